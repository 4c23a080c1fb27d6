"""Parse and apply the programmer agent's SEARCH/REPLACE edit blocks (aider's format).

Pure code: the caller passes file contents in through `read_file` and writes `ApplyResult.files`
out itself. Bad model output never raises; each problem becomes one message precise enough for
the model to fix on its next turn.
"""

from __future__ import annotations

import difflib
import heapq
import os.path
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

HEAD, DIVIDER, TAIL = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"
# The lookahead lets the regex engine skip to candidate characters fast; _markers() checks the line start.
_MARKER = re.compile(
    r"(?=[<=>])(?:(?P<head><{5,9} SEARCH>?)|(?P<divider>={5,9})|(?P<tail>>{5,9} REPLACE))[ \t]*$", re.M
)
_PATH_LOOKBACK_LINES = 8
_LABEL = re.compile(r"^(?:file ?(?:name|path)?|path)\s*:\s*", re.I)
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_WORD = re.compile(r"\w+")
_SHOWN_LINES = 30
_CANDIDATE_WINDOWS = 10
_SIMILARITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class EditBlock:
    """One SEARCH/REPLACE block: replace `search` in the file at `path` by `replace`."""

    path: str  # repository-relative POSIX path, as the model wrote it (markdown decoration stripped)
    search: str  # "" creates a new file
    replace: str


@dataclass(frozen=True)
class ParseResult:
    """The well-formed blocks of a model answer, and one sentence per malformed one."""

    blocks: list[EditBlock]
    problems: list[str]


@dataclass
class ApplyResult:
    """New full text of every changed or created file, and one message per block not applied."""

    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    applied: int = 0


# -- parsing ----------------------------------------------------------------------------------


class _Marker(NamedTuple):
    kind: str  # head | divider | tail
    start: int  # offset of the line's first character
    end: int  # offset just after the line's newline


def _markers(text: str):
    """The marker lines of an answer, in order; a marker may be indented but not follow other text."""
    for match in _MARKER.finditer(text):
        start = match.start()
        if start and text[start - 1] != "\n":
            start = text.rfind("\n", 0, start) + 1
            if text[start : match.start()].strip(" \t"):
                continue
        yield _Marker(match.lastgroup, start, min(match.end() + 1, len(text)))


@dataclass
class _OpenBlock:
    path: str | None
    line: int
    body_start: int
    divider: _Marker | None = None

    def unfinished(self, reason: str) -> str:
        what = f"The SEARCH/REPLACE block for {self.path}" if self.path else "A SEARCH/REPLACE block"
        return f"{what} starting at line {self.line} of your answer {reason}; resend the whole block."


def parse_edit_blocks(text: str) -> ParseResult:
    """Find the SEARCH/REPLACE blocks of a model answer; malformed blocks become problems."""
    text = text.replace("\r\n", "\n")
    blocks: list[EditBlock] = []
    problems: list[str] = []
    if "<<<<<" not in text and ">>>>>" not in text:
        return ParseResult(blocks, problems)
    line_of = _LineCounter(text)
    block: _OpenBlock | None = None
    previous_path: str | None = None
    boundary = 0  # the path of a block is looked for only after the previous block's last marker
    for marker in _markers(text):
        if marker.kind == "head":
            line = line_of(marker.start)
            if block is not None:
                missing = TAIL if block.divider else DIVIDER
                problems.append(block.unfinished(f"has no `{missing}` line before the next `{HEAD}` (line {line})"))
            path, only_separators = _path_before(text, marker.start, boundary)
            if path is None and only_separators:
                path = previous_path  # aider's convention: more blocks for the same file may omit the path
            block = _OpenBlock(path, line, marker.end)
            previous_path = path or previous_path
        elif marker.kind == "divider":
            if block is None or block.divider is not None:
                continue  # outside a block it is prose (a setext heading); inside REPLACE, content
            block.divider = marker
        elif block is None:
            problems.append(
                f"Line {line_of(marker.start)} of your answer has `{TAIL}` without a `{HEAD}` before it;"
                f" a block is the file path, `{HEAD}`, the old lines, `{DIVIDER}`, the new lines, `{TAIL}`."
            )
        elif block.divider is None:
            problems.append(block.unfinished(f"has no `{DIVIDER}` line between `{HEAD}` and `{TAIL}`"))
            block = None
        elif block.path is None:
            problems.append(
                f"The SEARCH/REPLACE block starting at line {block.line} of your answer has no file path;"
                f" write the repository-relative path alone on the line just before `{HEAD}`"
                " (or before the opening ``` fence) and resend the block."
            )
            block = None
        else:
            search = text[block.body_start : block.divider.start]
            replace = text[block.divider.end : marker.start]
            blocks.append(EditBlock(block.path, search, replace))
            block = None
        boundary = marker.end
    if block is not None:
        section = "REPLACE" if block.divider else "SEARCH"
        missing = TAIL if block.divider else DIVIDER
        problems.append(block.unfinished(f"has no `{missing}` line: the answer ends inside its {section} section"))
    return ParseResult(blocks, problems)


class _LineCounter:
    """1-based line number of an offset; offsets must be asked in increasing order."""

    def __init__(self, text: str):
        self.text, self.offset, self.line = text, 0, 1

    def __call__(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _path_before(text: str, head_start: int, boundary: int) -> tuple[str | None, bool]:
    """The path written on the lines just before a `<<<<<<< SEARCH` line, skipping fences and blanks.

    The flag says that nothing but fences, blank lines and `...` came before (so no path was given).
    """
    end = head_start
    for _ in range(_PATH_LOOKBACK_LINES):
        if end <= boundary:
            return None, True
        newline = text.rfind("\n", boundary, end - 1)
        start = newline + 1 if newline >= 0 else boundary
        line = text[start : end - 1].strip()
        end = start
        if not line or line.startswith(("```", "~~~")) or line in ("...", "…"):
            continue
        path = _path_from_line(line)
        return path, False
    return None, True


def _path_from_line(line: str) -> str | None:
    """The path on a line such as `src/a.py`, **src/a.py**, # File: `src/a.py`:; None for prose."""
    path = line
    while True:
        stripped = path.strip().lstrip("#>").strip()
        if stripped.startswith(("- ", "* ")):
            stripped = stripped[2:]
        stripped = _LABEL.sub("", stripped.rstrip(":").strip("*`'\"").strip())
        if stripped == path:
            break
        path = stripped
    path = path.replace("\\_", "_")
    if any(char.isalnum() for char in path) and not any(char.isspace() for char in path):
        return path
    named = [span for span in _BACKTICKED.findall(line) if "." in span or "/" in span]
    return named[0] if len(named) == 1 else None


def limit_blocks(blocks: Sequence[EditBlock], max_blocks: int, max_new_bytes: int) -> tuple[list[EditBlock], list[str]]:
    """The first blocks of an answer within the bounds, and one problem saying what was refused beyond them."""
    kept: list[EditBlock] = []
    used = 0
    for block in blocks:
        size = len(block.replace.encode("utf-8"))
        if len(kept) == max_blocks or used + size > max_new_bytes:
            break
        kept.append(block)
        used += size
    if len(kept) == len(blocks):
        return kept, []
    return kept, [
        f"Your answer held {len(blocks)} SEARCH/REPLACE blocks; only the first {len(kept)} were considered"
        f" (at most {max_blocks} blocks and {max_new_bytes} bytes of new text per answer)."
        " The rest were refused: send fewer, smaller blocks."
    ]


# -- applying ---------------------------------------------------------------------------------


def apply_edits(
    blocks: Sequence[EditBlock],
    read_file: Callable[[str], str | None],
    refuse: Callable[[str], str | None] = lambda path: None,
) -> ApplyResult:
    """Apply blocks in order, each against the result of the ones before; failures become problems."""
    result = ApplyResult()
    current: dict[str, str | None] = {}
    original: dict[str, str | None] = {}
    for block in blocks:
        path, problem = normalize_path(block.path)
        if problem is None:
            reason = refuse(path)
            problem = f"Edit to {path} refused: {reason}" if reason else None
        if problem is None and path not in current:
            try:
                current[path] = original[path] = read_file(path)
            except (OSError, UnicodeError) as exc:  # a path the model made up may name a directory
                problem = f"{path} could not be read ({exc}); edit a text file inside the repository."
        if problem is None:
            new_text, problem = _apply_block(path, current[path], _as_lines(block.search), _as_lines(block.replace))
            if problem is None:
                current[path] = new_text
                result.applied += 1
        if problem is not None:
            result.problems.append(problem)
    result.files = {path: text for path, text in current.items() if text is not None and text != original[path]}
    return result


def normalize_path(path: str) -> tuple[str, str | None]:
    """A block's path as a clean repository-relative POSIX path, or a reason why it cannot be edited."""
    path = path.strip()
    if not path:
        return path, "A SEARCH/REPLACE block has an empty file path; write the path just before the block."
    if any(ord(char) < 32 for char in path):
        return path, f"{path!r} is not a usable file path (it contains control characters)."
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", path) or path.startswith("\\"):
        return path, f"{path} is an absolute path; use the path relative to the repository root."
    if "\\" in path:
        return path, f"{path} uses backslashes; write repository-relative paths with forward slashes."
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return path, f"{path} points outside the repository ('..' is not allowed); use a path inside it."
    lookalike = next((part for part in parts if _is_dot_git(part)), None)
    if lookalike == ".git":
        return path, f"{path} is inside .git/, which may not be edited."
    if lookalike is not None:
        return path, f"{path} is inside .git/ ({lookalike!r} is the same as .git to git), which may not be edited."
    if path.endswith("/") or not parts:
        return path, f"{path} names a directory, not a file."
    return "/".join(parts), None


# Code points HFS+ ignores in names, so that `.g\u200cit` is `.git` there (git's is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])


def _is_dot_git(part: str) -> bool:
    """True for `.git` and what git refuses as it on some filesystem: any case, NTFS's trailing dots,
    spaces, short name and stream suffix, and HFS+'s ignored code points."""
    name = part.translate(_HFS_IGNORED).casefold()
    name = name.split(":", 1)[0].rstrip(". ")
    return name in (".git", "git~1")


def _as_lines(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if not text or text.endswith("\n") else text + "\n"


def _apply_block(path: str, text: str | None, search: str, replace: str) -> tuple[str | None, str | None]:
    """New text of the file after one block, or the problem that stopped it."""
    if not search.strip():
        if text is None or not text.strip():
            return replace, None
        return None, (
            f"{path} already exists and is not empty, so it cannot be created with an empty SEARCH section;"
            " put the exact existing lines to change in the SEARCH section."
        )
    if text is None:
        return None, (
            f"{path} does not exist, so its SEARCH section cannot match. To create a new file use an empty"
            " SEARCH section; to edit an existing file use its exact path."
        )
    crlf = "\r\n" in text and text.count("\n") == text.count("\r\n")
    body = text.replace("\r\n", "\n") if crlf else text
    new_body, matches = _replace(body, search, replace)
    if new_body is not None:
        return (new_body.replace("\n", "\r\n") if crlf else new_body), None
    if matches:
        return None, _ambiguous_message(path, search, matches)
    return None, _no_match_message(path, body, search, replace)


def _replace(body: str, search: str, replace: str) -> tuple[str | None, list[int]]:
    """Replace the one place SEARCH matches, trying stricter matches first.

    Returns the new text, or None and the 1-based first lines of all matches when there are several.
    """
    hay = body.split("\n")
    final_newline = hay[-1] == ""
    if final_newline:
        hay.pop()
    needle, new = search.split("\n")[:-1], replace.split("\n")[:-1]
    attempts = [(needle, new)]
    trimmed = _trim_blank_ends(needle, new)
    if trimmed[0] and trimmed[0] != needle:
        attempts.append(trimmed)
    keys_rstrip = [line.rstrip() for line in hay]
    keys_strip = [line.strip() for line in hay]
    for needle, new in attempts:
        for hay_keys, key in ((hay, None), (keys_rstrip, str.rstrip), (keys_strip, str.strip)):
            needle_keys = needle if key is None else [key(line) for line in needle]
            found = _windows(hay, needle, new, hay_keys, needle_keys, reindent=key is str.strip)
            if len(found) == 1:
                start, lines = found[0]
                hay[start : start + len(needle)] = lines
                return "\n".join(hay) + ("\n" if final_newline and hay else ""), []
            if found:
                return None, [start + 1 for start, _ in found]
    return None, []


def _windows(
    hay: list[str], needle: list[str], new: list[str], hay_keys: list[str], needle_keys: list[str],
    reindent: bool = False,
) -> list[tuple[int, list[str]]]:
    """Every place where the needle's keys equal the file's keys, with the replacement lines for it."""
    size, first = len(needle), needle_keys[0]
    found = []
    for start, key in enumerate(hay_keys):
        if key == first and hay_keys[start : start + size] == needle_keys:
            lines = _reindented(hay[start : start + size], needle, new) if reindent else new
            if lines is not None:
                found.append((start, lines))
    return found


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindented(window: list[str], needle: list[str], new: list[str]) -> list[str] | None:
    """The replacement shifted by the needle's uniform indentation offset from the file, if uniform."""
    pairs = [(_indent(have), _indent(want)) for have, want in zip(window, needle) if want.strip()]
    missing = {have[: len(have) - len(want)] if have.endswith(want) else None for have, want in pairs}
    if len(missing) == 1 and None not in missing:
        prefix = missing.pop()
        return [prefix + line if line.strip() else line for line in new]
    extra = {want[: len(want) - len(have)] if want.endswith(have) else None for have, want in pairs}
    if len(extra) == 1 and None not in extra:
        prefix = extra.pop()
        return [line[len(os.path.commonprefix([_indent(line), prefix])) :] for line in new]
    return None


def _blank_ends(lines: list[str]) -> tuple[int, int]:
    """How many blank lines a list of lines starts with, and how many the rest ends with."""
    lead = next((index for index, line in enumerate(lines) if line.strip()), len(lines))
    trail = next((index for index, line in enumerate(reversed(lines)) if line.strip()), len(lines) - lead)
    return lead, trail


def _trim_blank_ends(needle: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines at the ends of SEARCH, and as many of the blank ends of REPLACE."""
    lead, trail = _blank_ends(needle)
    new_lead, new_trail = _blank_ends(new)
    new_lead = min(lead, new_lead)
    new_trail = min(trail, new_trail, len(new) - new_lead)
    return needle[lead : len(needle) - trail], new[new_lead : len(new) - new_trail]


# -- messages ---------------------------------------------------------------------------------


def _ambiguous_message(path: str, search: str, starts: list[int]) -> str:
    lines = ", ".join(str(start) for start in starts)
    return (
        f"The SEARCH section for {path} matches {len(starts)} places (starting at lines {lines});"
        " include more surrounding lines so that it matches only one. It searched for:\n"
        + _quoted(_trimmed_lines(search))
    )


def _no_match_message(path: str, body: str, search: str, replace: str) -> str:
    wanted = _trimmed_lines(search)
    parts = [f"The SEARCH section for {path} does not match the file. It searched for:", _quoted(wanted)]
    hay = body.split("\n")
    if hay[-1] == "":
        hay.pop()
    similar = _most_similar(hay, wanted)
    if not body.strip():
        parts.append(f"{path} is empty; to fill it, use an empty SEARCH section.")
    elif similar is None:
        parts.append(f"No lines of {path} are similar to it.")
    else:
        start, end = similar
        where = f"line {start + 1}" if end - start == 1 else f"lines {start + 1}-{end}"
        parts += [f"Did you mean {where} of {path}?", _quoted(hay[start:end])]
    added = "\n".join(_trimmed_lines(replace))
    if added.strip() and f"\n{added}\n" in f"\n{body}\n":
        parts.append(f"The REPLACE lines are already in {path}; if this change is made already, drop this block.")
    if any(line.strip() in ("...", "…") for line in wanted):
        parts.append("Do not shorten a SEARCH section with '...': copy every line it spans.")
    parts.append(
        "The SEARCH section must copy existing lines exactly, comments and docstrings included;"
        " resend this block with its SEARCH section fixed."
    )
    return "\n".join(parts)


def _most_similar(hay: list[str], wanted: list[str]) -> tuple[int, int] | None:
    """Start and end (exclusive) of the file chunk most like `wanted`, or None when nothing is close.

    Cheap word overlap (rare words weigh more) picks a few candidate windows; difflib decides.
    """
    if not hay or not wanted:
        return None
    size = min(len(wanted), len(hay))
    wanted_words = set(_WORD.findall("\n".join(wanted)))
    line_words = [set(_WORD.findall(line)) for line in hay]
    frequency = Counter(word for words in line_words for word in words & wanted_words)
    scores = [sum(1 / frequency[word] for word in words & wanted_words) for words in line_words]
    totals = [0.0, *accumulate(scores)]
    starts = heapq.nlargest(
        _CANDIDATE_WINDOWS, range(len(hay) - size + 1), key=lambda start: (totals[start + size] - totals[start], -start)
    )
    target = "\n".join(line.strip() for line in wanted)
    best, best_ratio = None, _SIMILARITY_THRESHOLD
    for start in sorted(starts):
        chunk = "\n".join(line.strip() for line in hay[start : start + size])
        ratio = difflib.SequenceMatcher(None, target[:4000], chunk[:4000], autojunk=False).ratio()
        if ratio > best_ratio:
            best, best_ratio = (start, start + size), ratio
    return best


def _trimmed_lines(text: str) -> list[str]:
    lines = text.split("\n")
    lead, trail = _blank_ends(lines)
    return lines[lead : len(lines) - trail]


def _quoted(lines: list[str]) -> str:
    """Lines inside a fence longer than any fence in them, shortened to the first few dozen."""
    shown = lines[:_SHOWN_LINES]
    longest = max((len(line.lstrip()) - len(line.lstrip().lstrip("`")) for line in shown), default=0)
    fence = "`" * max(3, longest + 1)
    text = "\n".join([fence, *shown, fence])
    if len(lines) > len(shown):
        text += f"\n({len(lines) - len(shown)} more lines not shown)"
    return text


def describe_problems(problems: list[str], *, max_shown: int = 10, max_chars: int = 12_000) -> str:
    """Render problems as the feedback text for the model's next turn ("" when there are none), within bounds."""
    if not problems:
        return ""
    count = len(problems)
    sections: list[str] = []
    used = 0
    for number, problem in enumerate(problems[:max_shown], 1):
        section = f"## Problem {number} of {count}\n{problem}"
        if sections and used + len(section) > max_chars:
            break
        sections.append(section[:max_chars])
        used += len(section)
    if len(sections) < count:
        sections.append(f"({count - len(sections)} more problems not shown: fix the ones above first.)")
    return (
        f"{'1 problem' if count == 1 else f'{count} problems'} with your SEARCH/REPLACE blocks:\n\n"
        + "\n\n".join(sections)
        + "\n\nBlocks not mentioned above were applied: do not send them again."
        " Reply with corrected SEARCH/REPLACE blocks for the problems above only."
    )

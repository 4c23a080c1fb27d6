"""What the agents see of a repository: the relevant code, by classes and functions, and a ranked map.

Small files are shown whole; a large file as its skeleton (imports, signatures, docstrings' first
lines) with the most relevant classes and functions in full; a file that does not parse by line
windows. Every shown line is verbatim, so SEARCH blocks can be copied from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.loop.ranking import Query, RankedFile, Ranker, own_lines
from bot.loop.symbols import Outline, interfaces, render_view, skeleton_ranges
from bot.loop.symbols import outline as parse_outline

MAP_SHARE = 0.25  # of the context budget, for the repository map
MAX_SHOWN_FILES = 8
WHOLE_FILE_CHARS = 8_000  # larger files are shown by classes and functions
MAX_EXPANDED = 10  # classes/functions shown whole per file from the ranking alone
RELEVANT_SHARE = 0.2  # of the best score in the file, for a class/function to be shown whole
MAP_PARSE_LIMIT = 200_000  # larger files are listed in the map without their interfaces
MAP_MAX_PARSED = 40  # modules parsed for the map's interfaces, at most
WINDOW_LINES = 12  # lines each side of a hot line, for files that do not parse


@dataclass(frozen=True)
class SourceFile:
    """A repository text file as the agents see it."""

    path: str
    text: str


@dataclass(frozen=True)
class Snippet:
    """The part of one file an agent is shown (hidden runs are `# ... lines a-b not shown` lines)."""

    path: str
    text: str
    complete: bool  # the whole file
    symbols: tuple[str, ...] = ()  # classes/functions shown whole


@dataclass(frozen=True)
class Focus:
    """Where a localization pointed: files in order, and the classes/functions named in each."""

    files: tuple[str, ...] = ()
    symbols: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def symbols_in(self, path: str) -> tuple[str, ...]:
        """The symbols named for this file."""
        return next((names for named, names in self.symbols if named == path), ())

    def __bool__(self) -> bool:
        return bool(self.files)


@dataclass(frozen=True)
class Context:
    """The repository as one agent sees it."""

    repo_map: str
    snippets: tuple[Snippet, ...] = field(default_factory=tuple)

    def size(self) -> int:
        """Characters of code and map together."""
        return len(self.repo_map) + sum(len(snippet.text) for snippet in self.snippets)


class Outlines:
    """Module outlines, each parsed at most once while one context is built."""

    def __init__(self) -> None:
        self._parsed: dict[str, Outline | None] = {}

    def of(self, source: SourceFile) -> Outline | None:
        """The outline of a file (None when it does not parse)."""
        if source.path not in self._parsed:
            self._parsed[source.path] = parse_outline(source.text)
        return self._parsed[source.path]


def is_test_path(path: str) -> bool:
    """True for the files pytest would treat as tests or test support."""
    name = path.rsplit("/", 1)[-1]
    parts = path.split("/")
    return (
        name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
        or any(part in {"tests", "test", "testing"} for part in parts[:-1])
    )


def is_source_path(path: str) -> bool:
    """A Python module of the code under test (not a test)."""
    return path.endswith(".py") and not is_test_path(path)


def build_context(files: list[SourceFile], query_text: str, budget_chars: int, focus: Focus | None = None,
                  *, title: str = "") -> Context:
    """The relevant code and a ranked repository map, together within `budget_chars`."""
    ranker = Ranker(Query.parse(query_text, title))
    by_path = {source.path: source for source in files}
    ranked = ranker.rank_files([(source.path, source.text) for source in files if is_source_path(source.path)])
    ranked_by_path = {item.path: item for item in ranked}
    order: list[str] = []
    for path in (focus.files if focus else ()):
        if path in by_path and path not in order:
            order.append(path)
    focused = len(order)
    order += [item.path for item in ranked if item.path not in order]
    code_budget = int(budget_chars * (1 - MAP_SHARE))
    outlines = Outlines()
    snippets: list[Snippet] = []
    used = 0
    for position, path in enumerate(order):
        remaining = code_budget - used
        if remaining < 300 or len(snippets) >= MAX_SHOWN_FILES:
            break
        if position < focused:
            cap = max(remaining // (focused - position), min(remaining, 2000))
        else:
            cap = remaining if not snippets else max(remaining // 2, min(remaining, 3000))
        source = by_path[path]
        if not source.text.strip():
            continue
        wanted = focus.symbols_in(path) if focus else ()
        # A file the localization named, or the top-ranked one, may be shown whole if it fits.
        whole = cap if position < focused else int(cap * 0.6) if position == 0 else WHOLE_FILE_CHARS
        snippet = view_of(source, ranker, cap, wanted, ranked_by_path.get(path), outlines, whole)
        if snippet is not None and (snippet.complete or snippet.symbols or len(snippet.text) >= 300):
            snippets.append(snippet)
            used += len(snippet.text)
    shown = [snippet.path for snippet in snippets]
    rest = [item.path for item in ranked if item.path not in shown]
    rest += sorted(path for path in by_path if path not in shown and path not in ranked_by_path)
    repo_map = repository_map(by_path, shown, rest, budget_chars - used, outlines)
    return Context(repo_map, tuple(snippets))


def view_of(source: SourceFile, ranker: Ranker, cap: int, wanted: tuple[str, ...] = (),
            ranked: RankedFile | None = None, outlines: Outlines | None = None,
            whole: int = WHOLE_FILE_CHARS) -> Snippet | None:
    """The most useful view of one file within `cap` characters, or None when nothing useful fits."""
    text = source.text
    if len(text) <= min(cap, whole):
        return Snippet(source.path, text, True)
    found = (outlines or Outlines()).of(source)
    if found is None:
        return _windows(source, ranker, cap)
    named = [symbol for symbol in (found.find(name) for name in wanted) if symbol is not None]
    scored = ranker.rank_symbols(text, found, ranked)
    best = scored[0][0] if scored else 0.0
    relevant = [symbol for score, symbol in scored if score >= RELEVANT_SHARE * best and symbol not in named]
    expanded = list(dict.fromkeys(named + relevant[:MAX_EXPANDED]))
    must = max(len(named), 1 if expanded else 0)

    def render(count: int, detail: int) -> str:
        return render_view(text, skeleton_ranges(found, detail) + _expansion_ranges(found, expanded[:count]))

    def most(detail: int) -> int:
        """How many of `expanded` fit whole beside a skeleton of this detail (-1: not even the skeleton)."""
        if len(render(0, detail)) > cap:
            return -1
        low, high = 0, len(expanded)
        while low < high:
            middle = (low + high + 1) // 2
            if len(render(middle, detail)) <= cap:
                low = middle
            else:
                high = middle - 1
        return low

    # Signatures matter more than docstrings, the classes/functions the issue is about more than signatures.
    counts = {detail: most(detail) for detail in (2, 1, 0)}
    if counts[2] >= 0 and counts[2] == counts[1]:
        detail = 2
    elif counts[1] >= must:
        detail = 1
    else:
        detail = 0
    if counts[detail] < 0:
        return None
    view = render(counts[detail], detail)
    if len(view) > 0.8 * len(text) and len(text) <= cap:
        return Snippet(source.path, text, True)
    return Snippet(source.path, view, False, tuple(symbol.name for symbol in expanded[:counts[detail]]))


def _expansion_ranges(found: Outline, expanded: list) -> list[tuple[int, int]]:
    """Lines of the symbols shown whole (a class: its own lines), with the signatures of their parents."""
    ranges = []
    for symbol in expanded:
        ranges += own_lines(found, symbol) if symbol.kind == "class" else [(symbol.start, symbol.end)]
        for parent in found.symbols:
            if parent.depth < symbol.depth and parent.start <= symbol.start and symbol.end <= parent.end:
                ranges.append((parent.start, parent.body_start - 1))
    return ranges


def _windows(source: SourceFile, ranker: Ranker, cap: int) -> Snippet | None:
    """A file that does not parse, shown as windows of lines around the issue's terms."""
    hot = ranker.hot_lines(source.text)
    lines = source.text.count("\n") + 1
    ranges: list[tuple[int, int]] = []
    view = None
    for _weight, line in hot[:20]:
        candidate = ranges + [(max(1, line - WINDOW_LINES), min(lines, line + WINDOW_LINES))]
        rendered = render_view(source.text, candidate)
        if len(rendered) > cap:
            break
        ranges, view = candidate, rendered
    if view is None:
        return None
    return Snippet(source.path, view, False)


def repository_map(by_path: dict[str, SourceFile], shown: list[str], rest: list[str], budget_chars: int,
                   outlines: Outlines | None = None) -> str:
    """Files by relevance, with the public classes and functions of the relevant modules, within a budget.

    The shown files come first (always); modules are parsed only while the budget lasts.
    """
    outlines = outlines or Outlines()
    out = [f"{path}  (code below)" for path in shown]
    used = sum(len(line) + 1 for line in out) + 40  # room for the closing "... and N more files"
    listed = parsed = 0
    parsing = True
    for path in rest:
        entry = [path]
        source = by_path[path]
        if parsing and is_source_path(path) and len(source.text) <= MAP_PARSE_LIMIT:
            found = outlines.of(source)
            parsed += 1
            if found is not None:
                entry += ["    " + line for line in interfaces(found, source.text)]
        block = "\n".join(entry)
        if used + len(block) + 1 > budget_chars:
            # The budget for interfaces is spent: the other files are listed by path, unparsed.
            parsing = False
            if used + len(path) + 1 > budget_chars:
                break
            block = path
        out.append(block)
        used += len(block) + 1
        listed += 1
        if parsed >= MAP_MAX_PARSED:
            parsing = False
    if listed < len(rest):
        out.append(f"... and {len(rest) - listed} more files")
    return "\n".join(out)

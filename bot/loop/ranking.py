"""How relevant each file, class and function is to an issue.

What the issue names counts most: identifiers in code spans and tracebacks, and a traceback's
frames point straight at files and functions; plain words count a little. Files are scored with
BM25 over the issue's terms, counted in one pass per file by an Aho-Corasick automaton (the
repository's text is never tokenized in Python, so 50 MB take well under a second).
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter

from ahocorasick_rs import AhoCorasick

from bot.loop.symbols import Outline, Symbol

MAX_TERMS = 48
MAX_FRAMES = 60
_FRAME = re.compile(r'File "([^"\n]{1,300})", line (\d+)(?:, in ([\w<>.]{1,100}))?')
_PYTEST_FRAME = re.compile(r"^\s*([\w./\\-]{1,300}\.py):(\d+):?(?: in (\w+))?", re.MULTILINE)
_FENCED = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_INLINE = re.compile(r"`([^`\n]{1,200})`")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CALL_OR_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Za-z_][A-Za-z0-9_]*(?=\()"
                           r"|[A-Za-z]*_[A-Za-z0-9_]*|[a-z]+[A-Z][A-Za-z0-9]*|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*")
_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
_PYTHON_NAMES = frozenset(
    "False None True and as assert async await break class continue def del elif else except finally for from "
    "global if import in is lambda nonlocal not or pass raise return try while with yield self cls print len str "
    "int float bool list dict set tuple type object range open super isinstance repr args kwargs Traceback "
    "most recent call last File line module stdin python pip install usr lib site packages venv http https www com "
    "github org foo bar baz qux quux spam eggs ham".split())
_STOP = frozenset(
    "the and for with that this from not are was but have has when should would could into then than use using "
    "issue issues test tests there their they them what which will also just like does doesn even only some such "
    "other more most very here where been being were your about after before because while each every same want "
    "make made work works working expected actual behavior behaviour example following error errors version "
    "versions reproduce reproduction result results output instead however seems seem think know need case cases "
    "thanks please hello currently still without within between something anything nothing default value values "
    "true false none return returns called call calls file files line lines code python running raise raised".split())
_BM25_K, _BM25_B = 1.2, 0.75


@dataclass(frozen=True)
class Term:
    """A string to look for in the code, with how much a match counts."""

    text: str
    weight: float


@dataclass(frozen=True)
class Frame:
    """One frame of a traceback in the issue."""

    path: str
    line: int
    function: str | None


@dataclass
class Query:
    """What an issue asks about, as terms and traceback frames."""

    terms: list[Term] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, title: str = "") -> Query:
        """Terms and frames of an issue's text (the title's terms count more)."""
        frames = _frames(text)
        weights: dict[str, float] = {}
        mentions: dict[str, int] = {}

        def add(term: str, weight: float) -> None:
            if len(term) < 3 or term in _PYTHON_NAMES or term.lower() in _STOP:
                return
            weights[term] = max(weights.get(term, 0.0), weight)
            mentions[term] = mentions.get(term, 0) + 1

        code = [match.group(1) for match in _FENCED.finditer(text)]
        prose = _FENCED.sub(" ", text)
        code += [match.group(1) for match in _INLINE.finditer(prose)]
        prose = _INLINE.sub(" ", prose)
        for frame in frames:
            if frame.function and not frame.function.startswith("<"):
                add(frame.function, 4.0)
        for span in code:
            called = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\(", span))
            for name in _DOTTED.findall(span):
                parts = name.split(".")
                for part in parts:
                    add(part, 3.0 if _looks_like_code(part) or len(parts) > 1 or part in called else 2.0)
        for name in _CALL_OR_CODE.findall(prose):
            for part in name.split("."):
                add(part, 3.0 if _looks_like_code(part) else 2.0)
        for word in _WORD.findall(prose):
            add(word.lower(), 1.0)
        for word in _DOTTED.findall(title):
            for part in word.split("."):
                if part in weights or part.lower() in weights:
                    key = part if part in weights else part.lower()
                    weights[key] *= 1.5
        terms = [Term(term, weight * (1 + 0.25 * min(mentions[term] - 1, 4))) for term, weight in weights.items()]
        terms.sort(key=lambda term: (-term.weight, term.text))
        return cls(terms[:MAX_TERMS], frames)


def _looks_like_code(name: str) -> bool:
    return "_" in name.strip("_") or (any(c.isupper() for c in name[1:]) and any(c.islower() for c in name))


def _frames(text: str) -> list[Frame]:
    frames = []
    for pattern in (_FRAME, _PYTEST_FRAME):
        for match in pattern.finditer(text):
            frames.append(Frame(match.group(1).replace("\\", "/"), int(match.group(2)), match.group(3)))
            if len(frames) >= MAX_FRAMES:
                return frames
    return frames


def frame_matches(frame_path: str, repo_path: str) -> bool:
    """True when a traceback's file is this repository file (two trailing path parts agree, or a bare name)."""
    frame_parts = [part for part in frame_path.split("/") if part not in ("", ".")]
    repo_parts = repo_path.split("/")
    if not frame_parts or frame_parts[-1] != repo_parts[-1]:
        return False
    if len(frame_parts) == 1:
        return True
    return len(repo_parts) >= 2 and frame_parts[-2] == repo_parts[-2]


@dataclass(frozen=True)
class RankedFile:
    """A file with its relevance to the issue."""

    path: str
    text: str
    score: float
    frame_lines: tuple[int, ...] = ()  # lines a traceback frame points at
    frame_functions: tuple[str, ...] = ()


class Ranker:
    """Scores files, and the classes and functions inside them, against one query."""

    def __init__(self, query: Query):
        self.query = query
        self.terms = query.terms
        # Definitions of the names the issue uses ("class Panel", "def convert") are looked for in the same pass.
        self._defined = [index for index, term in enumerate(self.terms) if term.weight >= 2 and term.text[:1].isalpha()
                         or term.text.startswith("_")]
        patterns = [term.text for term in self.terms]
        patterns += [f"{keyword} {self.terms[index].text}" for index in self._defined for keyword in ("class", "def")]
        self._automaton = AhoCorasick(patterns) if patterns else None
        self.idf: list[float] = [1.0] * len(self.terms)
        self._words = {term.text.lower(): term.weight for term in self.terms}

    def counts(self, text: str) -> tuple[list[int], int]:
        """How often each term occurs in a text, and how many of the named classes/functions it defines."""
        counts = [0] * len(self.terms)
        definitions = 0
        if self._automaton is not None:
            tally = Counter(map(itemgetter(0), self._automaton.find_matches_as_indexes(text, overlapping=True)))
            for index, count in tally.items():
                if index < len(counts):
                    counts[index] = count
                else:
                    definitions += count
        return counts, definitions

    def rank_files(self, files: list[tuple[str, str]]) -> list[RankedFile]:
        """Files (path, text) by relevance, best first; only files with some relevance."""
        if not files:
            return []
        counted = [self.counts(text) for _, text in files]
        all_counts = [counts for counts, _ in counted]
        total = len(files)
        for index in range(len(self.terms)):
            frequency = sum(1 for counts in all_counts if counts[index])
            self.idf[index] = math.log(1 + (total - frequency + 0.5) / (frequency + 0.5))
        average = sum(len(text) for _, text in files) / total or 1.0
        ranked = []
        for (path, text), (counts, definitions) in zip(files, counted):
            score = 0.0
            norm = _BM25_K * (1 - _BM25_B + _BM25_B * len(text) / average)
            for index, count in enumerate(counts):
                if count:
                    score += self.terms[index].weight * self.idf[index] * count * (_BM25_K + 1) / (count + norm)
            score += self._path_score(path) + 6.0 * min(definitions, 3)
            if _is_peripheral(path):
                score *= 0.3
            lines, functions = self._frames_in(path)
            if lines:
                score += 25.0 + 5.0 * len(lines)
            if score > 0:
                ranked.append(RankedFile(path, text, score, lines, functions))
        ranked.sort(key=lambda item: (-item.score, item.path))
        return ranked

    def _path_score(self, path: str) -> float:
        parts = re.split(r"[/._-]", path.lower())
        score = 0.0
        for index, term in enumerate(self.terms):
            if term.text.lower() in parts:
                score += 2.0 * term.weight * max(self.idf[index], 0.5)
        return score

    def _frames_in(self, path: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        frames = [frame for frame in self.query.frames if frame_matches(frame.path, path)]
        return (tuple(frame.line for frame in frames),
                tuple(frame.function for frame in frames if frame.function))

    def rank_symbols(self, text: str, found: Outline, ranked: RankedFile | None = None) -> list[tuple[float, Symbol]]:
        """The file's classes, functions and methods by relevance (own lines only), best first."""
        starts = _line_starts(text)
        per_line: dict[int, list[int]] = {}
        if self._automaton is not None:
            for index, start, _end in self._automaton.find_matches_as_indexes(text, overlapping=True):
                if index < len(self.terms):
                    per_line.setdefault(bisect.bisect_right(starts, start), []).append(index)
        frame_lines = ranked.frame_lines if ranked else ()
        frame_functions = set(ranked.frame_functions) if ranked else set()
        names = {term.text: term.weight for term in self.terms}
        scored = []
        for symbol in found.symbols:
            own = own_lines(found, symbol)
            counts: dict[int, int] = {}
            for start, end in own:
                for line in range(start, end + 1):
                    for index in per_line.get(line, ()):
                        counts[index] = counts.get(index, 0) + 1
            score = sum(self.terms[index].weight * max(self.idf[index], 0.3) * math.log1p(count)
                        for index, count in counts.items())
            score += 4.0 * names.get(symbol.short_name, 0.0)
            score += 1.5 * sum(self._words.get(word, 0.0) for word in _name_words(symbol.short_name))
            score += 1.0 * sum(names.get(part, 0.0) for part in symbol.name.split(".")[:-1])
            if symbol.short_name in frame_functions:
                score += 30.0
            if any(start <= line <= end for line in frame_lines for start, end in own):
                score += 30.0
            if score > 0:
                scored.append((score, symbol))
        scored.sort(key=lambda item: (-item[0], item[1].start))
        return scored

    def hot_lines(self, text: str) -> list[tuple[float, int]]:
        """Lines with term matches, by weight (for files shown by line windows)."""
        starts = _line_starts(text)
        weights: dict[int, float] = {}
        if self._automaton is not None:
            for index, start, _end in self._automaton.find_matches_as_indexes(text, overlapping=True):
                if index >= len(self.terms):
                    continue
                line = bisect.bisect_right(starts, start)
                weights[line] = weights.get(line, 0.0) + self.terms[index].weight * max(self.idf[index], 0.3)
        return sorted(((weight, line) for line, weight in weights.items()), key=lambda item: (-item[0], item[1]))


_PERIPHERAL = frozenset({"docs", "doc", "examples", "example", "benchmarks", "benchmark", "bench", "tools",
                         "scripts", "script", "artwork", "tasks"})


def _is_peripheral(path: str) -> bool:
    """Documentation, examples, tools and packaging: rarely where a fix goes."""
    parts = path.split("/")
    return bool(_PERIPHERAL.intersection(parts[:-1])) or parts[-1] in {"setup.py", "conftest.py", "noxfile.py",
                                                                       "tasks.py", "conf.py"}


def _name_words(name: str) -> set[str]:
    """`_is_dataclass_repr` → {is, dataclass, repr}; `getFullName` → {get, full, name}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").lower()
    return {word for word in spaced.split() if len(word) >= 3}


def own_lines(found: Outline, symbol: Symbol) -> list[tuple[int, int]]:
    """The lines of a symbol that are not inside one of its nested symbols."""
    children = [child for child in found.symbols
                if child.depth == symbol.depth + 1 and symbol.start <= child.start and child.end <= symbol.end
                and child.name.startswith(symbol.name + ".")]
    spans = []
    cursor = symbol.start
    for child in sorted(children, key=lambda child: child.start):
        if child.start > cursor:
            spans.append((cursor, child.start - 1))
        cursor = max(cursor, child.end + 1)
    if cursor <= symbol.end:
        spans.append((cursor, symbol.end))
    return spans


def _line_starts(text: str) -> list[int]:
    starts = [0]
    index = text.find("\n")
    while index >= 0:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return starts

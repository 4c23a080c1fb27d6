"""The programmer's requests to see more code: `READ path` or `READ path:Symbol` on a line of its own.

Parsing is pure; answering takes the file reader in. Every request gets an answer: the code (within
a budget) or one line saying why not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.loop.edits import HEAD, TAIL, normalize_path
from bot.loop.symbols import outline, render_view
from bot.loop.untrusted import fence, one_line, reveal

MAX_READS_PER_ANSWER = 8
_READ = re.compile(r"^[ \t]*[*_`>-]*[ \t]*READ[ \t]+[`'\"]?([^\s`'\"]+?)[`'\"]?[ \t]*[*_`]*[ \t]*$")
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class ReadRequest:
    """One `READ` line: a path and, optionally, a class, function or `Class.method` in it."""

    path: str
    symbol: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.symbol}" if self.symbol else self.path


def parse_reads(text: str) -> list[ReadRequest]:
    """The READ requests of an answer, in order, without duplicates; lines inside edit blocks are code."""
    requests: list[ReadRequest] = []
    inside = False
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(HEAD[:5]) and "SEARCH" in stripped:
            inside = True
            continue
        if stripped.startswith(TAIL[:5]) and "REPLACE" in stripped:
            inside = False
            continue
        if inside:
            continue
        match = _READ.match(line)
        if match is None:
            continue
        target = match.group(1)
        path, _, symbol = target.partition(":")
        request = ReadRequest(path, symbol if symbol and _SYMBOL.fullmatch(symbol) else None)
        if path and request not in requests:
            requests.append(request)
    return requests


# The reader answers (text, None) or (None, one-line reason): missing, binary, a symlink, too large.
Reader = Callable[[str], tuple[str | None, str | None]]


def answer_reads(requests: list[ReadRequest], read: Reader, budget_chars: int,
                 limit: int = MAX_READS_PER_ANSWER) -> str:
    """The text answering the READ requests: code within the budget, one line for each that cannot be read."""
    parts = ["# Code you asked to READ"]
    used = 0
    for request in requests[:limit]:
        text, problem = _read_one(request, read)
        if problem is not None:
            parts.append(f"READ {request}: {problem}")
            continue
        room = budget_chars - used
        if len(text) > room:
            parts.append(f"READ {request}: not shown, the context budget is spent ({len(text):,} characters);"
                         " ask for a single class or function with `READ path:Symbol`.")
            continue
        used += len(text)
        parts.append(f"## {one_line(str(request))}\n{fence(reveal(text), 'python')}")
    if len(requests) > limit:
        parts.append(f"Only the first {limit} READ requests of an answer are served;"
                     f" {len(requests) - limit} were ignored: {', '.join(map(str, requests[limit:limit + 5]))}"
                     + (" ..." if len(requests) > limit + 5 else "") + ".")
    return "\n\n".join(parts)


def _read_one(request: ReadRequest, read: Reader) -> tuple[str, None] | tuple[None, str]:
    path, problem = normalize_path(request.path)
    if problem is not None:
        return None, problem
    text, problem = read(path)
    if text is None:
        return None, problem or "cannot be read"
    if request.symbol is None:
        return text, None
    found = outline(text)
    if found is None:
        return None, (f"{path} does not parse as Python, so it has no symbol {request.symbol};"
                      f" READ {path} shows the file")
    symbol = found.find(request.symbol)
    if symbol is None:
        names = ", ".join(s.name for s in found.symbols[:30])
        return None, f"{path} has no class or function {request.symbol} (it has: {names or 'none'})"
    ranges = [(symbol.start, symbol.end)] + [
        (parent.start, parent.body_start - 1) for parent in found.symbols
        if parent.depth < symbol.depth and parent.start <= symbol.start and symbol.end <= parent.end]
    return render_view(text, ranges), None

"""Localization by the programmer's model, as Agentless does it: first the files, then the classes and functions.

The model sees the issue and the ranked repository map, names files; then sees those files'
skeletons and names classes and functions. Names that do not exist are dropped; when nothing
usable is named, the caller falls back to the ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.loop.context import Focus, SourceFile, is_source_path
from bot.loop.prompting import render
from bot.loop.symbols import outline, render_view, skeleton_ranges
from bot.loop.untrusted import fence_marks
from bot.outside.model import ModelClient, Reply, Role

MAX_FILES = 5
MAX_SYMBOLS_PER_FILE = 8
_TOKEN = re.compile(r"[^\s`'\"*,;()\[\]<>|]+")
_LOCATION = re.compile(r"(?:^|[\s`'\"*(])([\w./-]+\.py)\s*(?:::|:)\s*`?([A-Za-z_][\w.]*)")
_LABELLED = re.compile(r"^\W*(?:class|function|func|method|def)\s*:\s*`?([A-Za-z_][\w.]*)", re.IGNORECASE)


@dataclass
class Localization:
    """What the model pointed at, and its answers (their tokens count under the programmer)."""

    focus: Focus = field(default_factory=Focus)
    replies: list[Reply] = field(default_factory=list)
    problem: str | None = None  # why the ranking is used instead (nothing usable was named)


class Localizer:
    """Asks the programmer's model where the issue lives."""

    def __init__(self, model: ModelClient, role: Role = Role.PROGRAMMER):
        self.model = model
        self.role = role

    def localize(self, issue_title: str, issue_body: str, files: list[SourceFile], repo_map: str,
                 budget_chars: int) -> Localization:
        """Files, then classes and functions, named by the model; an empty focus when it named nothing usable."""
        result = Localization()
        sources = {source.path: source for source in files if is_source_path(source.path)}
        prompt = render("localize_files", issue_title=issue_title, issue_body=issue_body, repo_map=repo_map,
                        max_files=MAX_FILES)
        reply = self.model.complete(self.role, [{"role": "user", "content": prompt}])
        result.replies.append(reply)
        paths = parse_files(reply.text, list(sources))[:MAX_FILES]
        if not paths:
            result.problem = "the localization named no Python file of the repository"
            return result
        skeletons, used = [], 0
        for path in paths:
            text = sources[path].text
            found = outline(text)
            view = text if found is None else render_view(text, skeleton_ranges(found, 2))
            room = (budget_chars - used) // max(1, len(paths) - len(skeletons))
            if len(view) > room and found is not None:
                view = render_view(text, skeleton_ranges(found, 1))
            view = view[:room]
            used += len(view)
            skeletons.append({"path": path, "text": view, "fence": fence_marks(view)})
        prompt = render("localize_symbols", issue_title=issue_title, issue_body=issue_body, files=skeletons)
        reply = self.model.complete(self.role, [{"role": "user", "content": prompt}])
        result.replies.append(reply)
        symbols = parse_symbols(reply.text, {path: sources[path].text for path in paths})
        result.focus = Focus(tuple(paths), tuple((path, tuple(names)) for path, names in symbols.items()))
        return result


def parse_files(text: str, known: list[str]) -> list[str]:
    """Repository paths named in an answer, in order (a unique path suffix counts as its file)."""
    known_set = set(known)
    found: list[str] = []
    for token in _TOKEN.findall(text):
        token = token.strip(".:").removeprefix("./")
        if not token.endswith(".py"):
            token = token.split(":")[0]
            if not token.endswith(".py"):
                continue
        path = token if token in known_set else None
        if path is None:
            matches = [candidate for candidate in known if candidate.endswith("/" + token)]
            path = matches[0] if len(matches) == 1 else None
        if path is not None and path not in found:
            found.append(path)
    return found


def parse_symbols(text: str, files: dict[str, str]) -> dict[str, list[str]]:
    """`path:Symbol` lines (or a path line followed by `class: X` / `function: Y` lines) that exist."""
    outlines = {path: outline(source) for path, source in files.items()}
    named: dict[str, list[str]] = {}
    current: str | None = None

    def add(path: str | None, name: str) -> None:
        found = outlines.get(path) if path else None
        symbol = found.find(name.strip(".")) if found else None
        if symbol is not None and symbol.name not in named.setdefault(path, []):
            if len(named[path]) < MAX_SYMBOLS_PER_FILE:
                named[path].append(symbol.name)

    for line in text.splitlines():
        location = _LOCATION.search(line)
        if location:
            current = _resolve(location.group(1), list(files))
            add(current, location.group(2))
            continue
        paths = parse_files(line, list(files))
        if paths:
            current = paths[0]
            continue
        labelled = _LABELLED.match(line)
        if labelled:
            add(current, labelled.group(1))
    return {path: names for path, names in named.items() if names}


def _resolve(token: str, known: list[str]) -> str | None:
    paths = parse_files(token, known)
    return paths[0] if paths else None

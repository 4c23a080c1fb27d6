"""What the test designer sees, as a maintainer writing tests would: the unchanged code of the relevant
classes and functions, the fixtures the suite's `conftest.py` files provide, and one or two existing
test modules of the same area as style examples. Built once from the unchanged working copy, before
the programmer starts, so nothing the programmer writes can reach it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from bot.loop.context import (
    Context,
    Focus,
    Snippet,
    SourceFile,
    build_context,
    is_test_path,
)
from bot.loop.symbols import render_view

CODE_SHARE, FIXTURE_SHARE = 0.55, 0.15  # of the budget; the rest is for example tests
MAX_EXAMPLES = 2
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass(frozen=True)
class DesignerContext:
    """The test designer's view of the repository."""

    code: Context
    fixtures: tuple[Snippet, ...] = ()
    examples: tuple[Snippet, ...] = ()

    def size(self) -> int:
        """Characters of code, fixtures and examples together."""
        return self.code.size() + sum(len(s.text) for s in self.fixtures + self.examples)


def designer_context(files: list[SourceFile], query_text: str, budget_chars: int, focus: Focus | None = None,
                     *, title: str = "") -> DesignerContext:
    """The relevant unchanged code, the conftest fixtures and example tests, within `budget_chars`."""
    code = build_context(files, query_text, int(budget_chars * CODE_SHARE), focus, title=title)
    fixtures = conftest_fixtures(files, int(budget_chars * FIXTURE_SHARE))
    room = budget_chars - code.size() - sum(len(s.text) for s in fixtures)
    examples = example_tests(files, [snippet for snippet in code.snippets], room)
    return DesignerContext(code, fixtures, examples)


def conftest_fixtures(files: list[SourceFile], budget_chars: int) -> tuple[Snippet, ...]:
    """The fixtures of every `conftest.py`, shallowest first: imports, and each fixture whole when short."""
    out, used = [], 0
    conftests = sorted((s for s in files if s.path.rsplit("/", 1)[-1] == "conftest.py"),
                       key=lambda s: (s.path.count("/"), s.path))
    for source in conftests:
        ranges = _fixture_ranges(source.text)
        if ranges is None:
            continue
        view = render_view(source.text, ranges)
        if used + len(view) > budget_chars:
            view = view[: max(0, budget_chars - used)]
            if len(view) < 200:
                break
        out.append(Snippet(source.path, view, False))
        used += len(view)
    return tuple(out)


def _fixture_ranges(text: str) -> list[tuple[int, int]] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    ranges = []
    for node in tree.body:
        end = node.end_lineno or node.lineno
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            ranges.append((node.lineno, end))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list):
            start = min(decorator.lineno for decorator in node.decorator_list)
            body_start = node.body[0].lineno
            ranges.append((start, end) if end - start <= 15 else (start, body_start))
    return ranges


def example_tests(files: list[SourceFile], shown: list[Snippet], budget_chars: int) -> tuple[Snippet, ...]:
    """One or two existing test modules that exercise the shown code, as style examples (cut to the budget)."""
    if budget_chars < 400:
        return ()
    modules = {snippet.path.rsplit("/", 1)[-1].removesuffix(".py") for snippet in shown} - {"__init__"}
    names = {symbol.rsplit(".", 1)[-1] for snippet in shown for symbol in snippet.symbols}
    scored = []
    for source in files:
        base = source.path.rsplit("/", 1)[-1]
        if not (is_test_path(source.path) and base.endswith(".py") and base != "conftest.py"):
            continue
        if "agentcoder" in source.path.split("/"):
            continue
        words = set(_WORD.findall(source.text[:200_000]))
        score = 5 * sum(1 for module in modules if module and module in base) + len(names & words)
        score += sum(1 for module in modules if module in words)
        if score:
            scored.append((score, source.path, source))
    scored.sort(key=lambda item: (-item[0], item[1]))
    out, used = [], 0
    for _score, _path, source in scored[:MAX_EXAMPLES]:
        room = (budget_chars - used) // (MAX_EXAMPLES - len(out))
        text = source.text if len(source.text) <= room else _head(source.text, room)
        if not text:
            continue
        out.append(Snippet(source.path, text, text == source.text))
        used += len(text)
    return tuple(out)


def _head(text: str, room: int) -> str:
    """The first lines of a module that fit, ending with a marker for the rest."""
    lines = text.splitlines()
    kept, used = 0, 0
    while kept < len(lines) and used + len(lines[kept]) + 1 <= room - 40:
        used += len(lines[kept]) + 1
        kept += 1
    if kept == 0:
        return ""
    return render_view(text, [(1, kept)])

"""Changes to the generated test module on review: dropping named tests, and what a revision changed."""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

from bot.loop.evidence import function_sources

DIFF_CHARS = 6_000


@dataclass(frozen=True)
class TestReview:
    """What the maintainers said about the generated tests: for the test designer only, never the programmer."""

    __test__ = False  # not a pytest test class

    feedback: tuple[str, ...] = ()  # reviewers' words about the tests (untrusted)
    drop: tuple[str, ...] = ()  # test functions to remove

    @property
    def requested(self) -> bool:
        """True when the maintainers asked for any change to the tests."""
        return bool(self.feedback or self.drop)

    def asked(self, limit: int = 600) -> str:
        """What was asked, for the iteration log (each reviewer's words trimmed)."""
        parts = [text if len(text) <= limit else text[:limit] + "…" for text in self.feedback]
        if self.drop:
            parts.append("drop " + " ".join(self.drop))
        return "\n\n".join(parts)


@dataclass(frozen=True)
class ModuleChange:
    """Which test functions a revision added, removed or changed, and the unified diff."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    diff: str


def drop_tests(code: str, names: set[str]) -> str:
    """The module without the named test functions (decorators included); the rest is kept byte for byte."""
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            spans.append((first - 1, node.end_lineno))
    for start, end in sorted(spans, reverse=True):
        # Take the blank lines before the function with it, so no gap is left behind.
        while start > 0 and not lines[start - 1].strip():
            start -= 1
        del lines[start:end]
    return "".join(lines).strip("\n").rstrip() + "\n"


def module_change(before: str, after: str, path: str) -> ModuleChange:
    """What changed between two versions of the generated test module."""
    old, new = function_sources(before), function_sources(after)
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))
    if len(diff) > DIFF_CHARS:
        diff = diff[:DIFF_CHARS] + "\n...[diff trimmed]\n"
    return ModuleChange(
        added=[name for name in new if name not in old],
        removed=[name for name in old if name not in new],
        changed=[name for name in new if name in old and new[name] != old[name]],
        diff=diff,
    )

"""What the agents see of a repository: a compact map of its public interfaces and the most relevant files."""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_STOP = frozenset("the and for with that this from not are was but have has def self none true false return "
                  "import class when should would could into then than use using issue test tests".split())


@dataclass(frozen=True)
class SourceFile:
    """A repository text file as the agents see it."""

    path: str
    text: str


def is_test_path(path: str) -> bool:
    """True for the files pytest would treat as tests or test support."""
    name = path.rsplit("/", 1)[-1]
    parts = path.split("/")
    return (
        name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
        or any(part in {"tests", "test", "testing"} for part in parts[:-1])
    )


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def public_interfaces(path: str, text: str) -> list[str]:
    """Public classes, methods and functions of one module, one signature a line; [] when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            lines.append(_signature(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = f"({', '.join(ast.unparse(base) for base in node.bases)})" if node.bases else ""
            lines.append(f"class {node.name}{bases}")
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    lines.append("    " + _signature(item))
    return lines


def repository_map(files: list[SourceFile], budget_chars: int) -> str:
    """Every file, with the public interfaces of the Python ones that are not tests, within a budget."""
    out: list[str] = []
    used = 0
    for source in files:
        entry = [source.path]
        if source.path.endswith(".py") and not is_test_path(source.path):
            entry += ["    " + line for line in public_interfaces(source.path, source.text)]
        block = "\n".join(entry)
        if used + len(block) > budget_chars:
            out.append(f"... and {len(files) - len(out)} more files")
            break
        out.append(block)
        used += len(block) + 1
    return "\n".join(out)


def _words(text: str) -> Counter:
    return Counter(word.lower() for word in _WORD.findall(text) if word.lower() not in _STOP)


def relevant_files(files: list[SourceFile], query: str, budget_chars: int, *, include_tests: bool = False) -> list[SourceFile]:
    """The files that share the most words with the query (paths count double), whole, within a budget."""
    wanted = _words(query)
    scored = []
    for source in files:
        if not source.path.endswith(".py") or (is_test_path(source.path) and not include_tests):
            continue
        own = _words(source.text)
        for word, count in _words(source.path.replace("/", " ").replace(".", " ")).items():
            own[word] += 2 * count
        score = sum(min(count, own[word]) for word, count in wanted.items() if word in own)
        if score:
            scored.append((score, source.path, source))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[SourceFile] = []
    used = 0
    for _, _, source in scored:
        if used + len(source.text) <= budget_chars:
            chosen.append(source)
            used += len(source.text)
    return chosen

"""The classes and functions of a Python module, and views of it that show some of them whole.

A view keeps the lines it shows verbatim (so SEARCH blocks can be copied from it) and replaces
each run of hidden lines by one marker line, `# ... lines 120-180 not shown`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

PARSE_LIMIT_CHARS = 1_000_000  # a larger file is never parsed whole: it is shown by line windows
SHORT_STATEMENT_LINES = 6  # module- and class-level statements up to this long are shown in a skeleton


@dataclass(frozen=True)
class Symbol:
    """A class, function or method: its qualified name and 1-based line span (decorators included)."""

    name: str  # "parse", "Parser", "Parser.parse_args"
    kind: str  # "class" | "def"
    start: int
    end: int
    body_start: int  # first line after the signature
    doc_end: int  # last line of the docstring's first line (body_start - 1 when there is none)
    depth: int  # 0 at module level

    @property
    def short_name(self) -> str:
        """The last part of the qualified name."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Outline:
    """A parsed module: its symbols and the line spans of its other module- and class-level statements."""

    symbols: list[Symbol]
    statements: list[tuple[int, int]]  # (start, end) of statements that are not classes or functions

    def find(self, name: str) -> Symbol | None:
        """The symbol with this qualified name, or else the only one with this short name."""
        exact = [symbol for symbol in self.symbols if symbol.name == name]
        if exact:
            return exact[0]
        short = [symbol for symbol in self.symbols if symbol.short_name == name.rsplit(".", 1)[-1]]
        return short[0] if len(short) == 1 else None

    def enclosing(self, line: int) -> Symbol | None:
        """The innermost symbol whose span holds this line."""
        best = None
        for symbol in self.symbols:
            if symbol.start <= line <= symbol.end and (best is None or symbol.depth > best.depth):
                best = symbol
        return best


def outline(text: str) -> Outline | None:
    """The classes, functions and methods of a module; None when it does not parse (or is too large to)."""
    if len(text) > PARSE_LIMIT_CHARS:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    symbols: list[Symbol] = []
    statements: list[tuple[int, int]] = []
    _collect(tree.body, "", 0, symbols, statements)
    symbols.sort(key=lambda symbol: symbol.start)
    return Outline(symbols, statements)


def _collect(body: list[ast.stmt], prefix: str, depth: int, symbols: list[Symbol],
             statements: list[tuple[int, int]]) -> None:
    for node in body:
        end = node.end_lineno or node.lineno
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            body_start = node.body[0].lineno if node.body else end
            if body_start == node.lineno:  # `def f(): return 1` on one line
                body_start = end + 1
            doc_end = body_start - 1
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str) and first.lineno >= body_start):
                doc_end = first.lineno
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            name = f"{prefix}{node.name}"
            symbols.append(Symbol(name, kind, start, end, body_start, doc_end, depth))
            if isinstance(node, ast.ClassDef) and depth < 3:
                _collect(node.body, f"{name}.", depth + 1, symbols, statements)
        else:
            statements.append((node.lineno, end))
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            names = [target.id for target in targets if isinstance(target, ast.Name)]
            if names and end - node.lineno + 1 >= SHORT_STATEMENT_LINES:
                # A long constant (a table, a script template) can be what an issue is about.
                symbols.append(Symbol(f"{prefix}{names[0]}", "var", node.lineno, end, node.lineno + 1,
                                      node.lineno, depth))


def render_view(text: str, shown: Iterable[tuple[int, int]]) -> str:
    """The file with only the given 1-based line ranges shown; each hidden run becomes one marker line."""
    lines = text.splitlines()
    visible = bytearray(len(lines) + 2)
    for start, end in shown:
        for number in range(max(1, start), min(len(lines), end) + 1):
            visible[number] = 1
    out: list[str] = []
    number = 1
    while number <= len(lines):
        if visible[number]:
            out.append(lines[number - 1])
            number += 1
            continue
        run_end = number
        while run_end + 1 <= len(lines) and not visible[run_end + 1]:
            run_end += 1
        hidden = lines[number - 1:run_end]
        if all(not line.strip() for line in hidden):
            out.extend(hidden)
        else:
            first = next(line for line in hidden if line.strip())
            indent = first[: len(first) - len(first.lstrip())]
            where = f"line {number}" if run_end == number else f"lines {number}-{run_end}"
            out.append(f"{indent}# ... {where} not shown")
        number = run_end + 1
    return "\n".join(out)


def skeleton_ranges(found: Outline, detail: int) -> list[tuple[int, int]]:
    """Line ranges of a skeleton: detail 2 signatures, docstrings' first lines and short statements;
    1 signatures and imports; 0 nothing (only what the caller adds)."""
    ranges: list[tuple[int, int]] = []
    if detail <= 0:
        return ranges
    for symbol in found.symbols:
        if symbol.kind == "var":
            continue
        ranges.append((symbol.start, symbol.body_start - 1))
        if detail >= 2 and symbol.doc_end >= symbol.body_start:
            ranges.append((symbol.doc_end, symbol.doc_end))
    for start, end in found.statements:
        if detail >= 2 and end - start < SHORT_STATEMENT_LINES:
            ranges.append((start, end))
        elif detail >= 1:
            ranges.append((start, start))
    return ranges


def interfaces(found: Outline, text: str) -> list[str]:
    """Public classes and functions, one signature a line, indented by nesting (for the repository map)."""
    lines = text.splitlines()
    out = []
    hidden: list[str] = []
    for symbol in found.symbols:
        private = symbol.short_name.startswith("_") and symbol.short_name != "__init__"
        if symbol.kind == "var" or private or symbol.depth > 1 or any(symbol.name.startswith(prefix) for prefix in hidden):
            if symbol.kind == "class":
                hidden.append(symbol.name + ".")
            continue
        start = next((number for number in range(symbol.start, symbol.body_start)
                      if number - 1 < len(lines) and lines[number - 1].lstrip().startswith(
                          ("def ", "async def ", "class "))), None)
        if start is None:
            continue
        header = " ".join(" ".join(lines[number - 1].split(" #")[0].split())
                          for number in range(start, symbol.body_start) if number - 1 < len(lines))
        header = header.replace("( ", "(").replace(" )", ")").replace(", )", ")")
        header = header.rstrip(":")
        if len(header) > 160:
            header = header[:157] + "..."
        out.append("    " * symbol.depth + header)
    return out

"""What each generated test did, as maintainers review it: its code, and its result before and after the change."""

from __future__ import annotations

import ast

from bot.sandbox.results import RunResult

EVIDENCE_LINES = 12
EVIDENCE_CHARS = 800


def function_of(test_id: str) -> str:
    """`tests/x.py::test_a[1]` → `test_a` (the function a test id runs)."""
    return test_id.split("::")[-1].split("[")[0]


def function_sources(code: str) -> dict[str, str]:
    """Test function name → its source text, decorators included; {} when the module does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    lines = code.splitlines()
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            out[node.name] = "\n".join(lines[first - 1:node.end_lineno])
    return out


def failure_excerpt(message: str) -> str:
    """The assertion or exception of a pytest failure: its `E` lines (else its last lines), trimmed."""
    lines = message.rstrip().splitlines()
    picked = [line[1:].strip() if line.startswith("E") else line for line in lines
              if line.startswith("E ") or line.strip() == "E"]
    if not picked:
        picked = [line for line in lines if line.strip()][-EVIDENCE_LINES:]
    # The location line (`path:12: AssertionError`) says where it failed.
    location = next((line for line in reversed(lines) if ".py:" in line and not line.startswith((" ", "E"))), None)
    if location and location not in picked:
        picked.append(location)
    if len(picked) > EVIDENCE_LINES:
        picked = picked[:EVIDENCE_LINES - 1] + [f"...[{len(picked) - EVIDENCE_LINES + 1} more lines]"]
    text = "\n".join(picked).strip()
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + "...[trimmed]"


def result_of(run: RunResult, test_id: str) -> tuple[str, str]:
    """A test's outcome in a run (passed, failed, error, skipped, not run) and, unless it passed, why."""
    if run.running_at_timeout == test_id:
        return "failed", "timed out: the run was killed while this test ran"
    for test in run.tests:
        if test.id == test_id:
            return test.outcome, "" if test.outcome == "passed" else failure_excerpt(test.message)
    if run.collection_errors:
        return "error", "the module could not be collected:\n" + failure_excerpt(run.collection_errors[0].message)
    if run.timed_out:
        return "not run", "the run was killed at the timeout before this test ran"
    return "not run", ""

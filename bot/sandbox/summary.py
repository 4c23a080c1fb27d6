"""Readable text for one sandboxed test run (console summary and feedback to the programmer)."""

from __future__ import annotations

from bot.sandbox.results import RunResult

SYMBOL = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def counts_text(passed: int, failed: int, errors: int, skipped: int, *, seconds: float | None = None,
                always_skipped: bool = True) -> str:
    """`3 passed, 1 failed, 0 errors, 0 skipped in 1.2 s`: the one way a run's counts are written."""
    text = f"{passed} passed, {failed} failed, {errors} errors"
    if skipped or always_skipped:
        text += f", {skipped} skipped"
    return text + (f" in {seconds:.1f} s" if seconds is not None else "")


def format_counts(result: RunResult) -> str:
    """`3 passed, 1 failed, 0 errors, 0 skipped in 1.2 s` for one sandboxed run."""
    errors = result.count("error") + len(result.collection_errors)
    return counts_text(result.count("passed"), result.count("failed"), errors, result.count("skipped"),
                       seconds=result.duration_s)


def format_run(result: RunResult, max_message_lines: int = 15) -> str:
    """Per-test outcomes, collection errors and the run's problem, for a person at a terminal."""
    lines = []
    for test in result.tests:
        lines.append(f"{SYMBOL[test.outcome]:>5}  {test.id}")
        if test.outcome in {"failed", "error"} and test.message:
            lines.extend("       " + line for line in test.message.splitlines()[-max_message_lines:])
    for error in result.collection_errors:
        lines.append(f"ERROR  collecting {error.id}")
        lines.extend("       " + line for line in error.message.splitlines()[-max_message_lines:])
    problem = result.describe_problem()
    if problem:
        lines.append(problem)
    lines.append(format_counts(result))
    return "\n".join(lines)

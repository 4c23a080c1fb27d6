"""Readable text for one sandboxed test run (console summary and feedback to the programmer)."""

from __future__ import annotations

from bot.sandbox.results import RunResult

SYMBOL = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def format_counts(result: RunResult) -> str:
    """`3 passed, 1 failed, 0 errors, 0 skipped in 1.2 s`."""
    errors = result.count("error") + len(result.collection_errors)
    return (
        f"{result.count('passed')} passed, {result.count('failed')} failed, {errors} errors, "
        f"{result.count('skipped')} skipped in {result.duration_s:.1f} s"
    )


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

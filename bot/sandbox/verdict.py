"""The run's verdict: the plugin's report cross-checked with pytest's exit status and its collected tests.

Code under test runs in pytest's own process, so it could write to the report channel too. Records can
only be added (each test keeps its worst outcome), and a report that disagrees with how pytest exited,
or names tests pytest never collected, or lacks results pytest says it ran, makes the run fail and
says why. A pytest that never reached a session (a conftest that fails to import, a usage error, an
internal error) is a collection error carrying the console's text, never "no tests collected".
"""

from __future__ import annotations

from dataclasses import replace

from bot.sandbox.results import CollectionError, Report, RunResult

EXIT_MEANING = {0: "all tests passed", 1: "tests failed", 2: "interrupted", 3: "internal error",
                4: "usage error", 5: "no tests collected"}
CONSOLE_TAIL = 3000
UNPACK_FAILED = 125


def judge(result: RunResult, report: Report) -> RunResult:
    """The run's result after the cross-check: collection problems made visible, disagreements named."""
    if result.timed_out or result.out_of_memory:
        return result  # the report stops where the kill came; the problem is the kill
    code = result.exit_code
    if report.truncated:
        return replace(result, report_mismatch="the report passed its size limit")
    if code == UNPACK_FAILED:
        return _collection_error(result, "the checkout could not be unpacked in the sandbox (is it over the"
                                         " workspace size limit?)")
    never_started = report.collected is None and report.finish is None and not report.tests
    if never_started and code != 0 or code in (3, 4) or (code == 2 and not report.errors):
        if report.errors:
            return result
        return _collection_error(result, f"pytest stopped before running tests (exit status {code}"
                                         f"{': ' + EXIT_MEANING[code] if code in EXIT_MEANING else ''})")
    reason = _disagreement(result, report)
    return replace(result, report_mismatch=reason) if reason else result


def _disagreement(result: RunResult, report: Report) -> str | None:
    code = result.exit_code
    meaning = f"exit status {code} ({EXIT_MEANING.get(code, 'not a pytest status')})"
    if report.repeated:
        return f"the report holds a second '{report.repeated[0]}' record"
    if report.finish is None:
        return f"pytest's process ended with {meaning} but its report never reached the end of the session"
    if report.finish != code:
        return f"pytest's session ended with status {report.finish} but its process exited with {code}"
    failing = bool(report.errors) or any(test.outcome in {"failed", "error"} for test in report.tests)
    if code == 0 and failing:
        return f"{meaning} but the report shows failures"
    if code == 1 and not failing:
        return f"{meaning} but the report shows no failure"
    if code == 5 and report.tests:
        return f"{meaning} but the report shows results"
    if report.collected is None:
        return "the report has no list of collected tests" if report.tests and not report.distributed else None
    collected = set(report.collected)
    unknown = [test.id for test in report.tests if test.id not in collected]
    if unknown:
        return f"the report names {len(unknown)} test(s) pytest did not collect, such as {unknown[0]}"
    missing = collected - {test.id for test in report.tests}
    if code == 0 and missing:
        return f"{len(missing)} collected test(s) have no result although pytest says all passed"
    return None


def _collection_error(result: RunResult, headline: str) -> RunResult:
    console = result.output.strip()[-CONSOLE_TAIL:]
    return replace(result, collection_errors=[*result.collection_errors,
                                              CollectionError("<pytest>", f"{headline}\n{console}".strip())])

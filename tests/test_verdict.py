"""The run's verdict: the plugin's report cross-checked with pytest's exit status (pure, no Docker)."""

from __future__ import annotations

import json

from bot.sandbox.results import ReportReader, RunProblem, RunResult, read_report
from bot.sandbox.verdict import judge


def lines(*records) -> list[str]:
    return [json.dumps(record) for record in records]


def test(nodeid: str, outcome: str) -> dict:
    return {"kind": "test", "id": nodeid, "when": "call", "outcome": outcome, "message": ""}


test.__test__ = False
HONEST = lines({"kind": "collected", "ids": ["t::a", "t::b"]}, test("t::a", "passed"), test("t::b", "failed"),
               {"kind": "finish", "exitstatus": 1})


def verdict(report_lines, exit_code, output="") -> RunResult:
    report = read_report(report_lines)
    result = RunResult(tests=report.tests, collection_errors=report.errors, exit_code=exit_code, output=output)
    return judge(result, report)


def test_an_honest_report_stands():
    result = verdict(HONEST, 1)
    assert result.problem is None and result.outcomes() == {"t::a": "passed", "t::b": "failed"}


def test_appended_passes_cannot_hide_a_failure_and_a_forged_exit_is_named():
    forged = HONEST + lines(test("t::b", "passed"), {"kind": "finish", "exitstatus": 0})
    result = verdict(forged, 0)
    assert result.outcomes()["t::b"] == "failed" and not result.ok
    assert result.problem is RunProblem.REPORT_MISMATCH
    assert result.report_mismatch == "the report holds a second 'finish' record"


def test_exit_status_and_session_status_must_agree():
    result = verdict(HONEST, 0)
    assert result.report_mismatch == "pytest's session ended with status 1 but its process exited with 0"


def test_a_session_that_never_ended_is_not_trusted():
    result = verdict(HONEST[:-1], 0)
    assert result.problem is RunProblem.REPORT_MISMATCH
    assert "never reached the end of the session" in result.describe_problem()


def test_results_for_tests_pytest_never_collected_are_named():
    report = lines({"kind": "collected", "ids": ["t::a"]}, test("t::a", "passed"), test("t::ghost", "passed"),
                   {"kind": "finish", "exitstatus": 0})
    assert "did not collect, such as t::ghost" in verdict(report, 0).report_mismatch


def test_all_passed_needs_a_result_for_every_collected_test():
    report = lines({"kind": "collected", "ids": ["t::a", "t::b"]}, test("t::a", "passed"),
                   {"kind": "finish", "exitstatus": 0})
    assert verdict(report, 0).report_mismatch == "1 collected test(s) have no result although pytest says all passed"


def test_a_failure_status_without_a_failure_in_the_report_is_named():
    report = lines({"kind": "collected", "ids": ["t::a"]}, test("t::a", "passed"), {"kind": "finish", "exitstatus": 1})
    assert verdict(report, 1).report_mismatch == "exit status 1 (tests failed) but the report shows no failure"


def test_pytest_that_never_started_a_session_is_a_collection_error_with_the_console_text():
    result = verdict([], 4, output="ImportError while loading conftest '/workspace/conftest.py'.\nE   boom")
    assert result.problem is RunProblem.COLLECTION_ERROR
    assert "exit status 4: usage error" in result.collection_errors[0].message
    assert "boom" in result.collection_errors[0].message


def test_internal_error_is_a_collection_error():
    report = lines({"kind": "collected", "ids": ["t::a"]}, {"kind": "finish", "exitstatus": 3})
    assert verdict(report, 3).problem is RunProblem.COLLECTION_ERROR


def test_no_tests_collected_is_only_what_pytest_says():
    report = lines({"kind": "collected", "ids": []}, {"kind": "finish", "exitstatus": 5})
    assert verdict(report, 5).problem is RunProblem.NO_TESTS


def test_malformed_lines_are_skipped_and_counted():
    report = read_report(['{"kind": "start"}', "[1, 2]", "not json", '{"kind": "test", "id": "x", "outcome": "odd"}',
                          *HONEST])
    assert report.bad_lines == 4 and len(report.tests) == 2


def test_a_report_over_its_limit_is_not_trusted():
    reader = ReportReader(limit=40)
    for line in HONEST:
        reader.feed((line + "\n").encode())
    report = reader.report()
    assert report.truncated
    result = judge(RunResult(tests=report.tests, exit_code=1), report)
    assert result.problem is RunProblem.REPORT_MISMATCH
    assert result.report_mismatch == "the report passed its size limit"

"""Outcome → Markdown: what maintainers read in the PR body and the status comment."""

from bot.app.reports import (
    GITHUB_BODY_LIMIT,
    evidence_block,
    failure_report,
    markdown_log,
    pr_body,
)
from bot.loop.outcome import GeneratedTest, Iteration, Outcome, Stop, TestSummary, Usage

EMPTY_CODE = 'def test_empty():\n    """mean([]) raises ValueError"""\n    with pytest.raises(ValueError):\n        mean([])'


def outcome(feedback: str = "FAILED t::x\nassert 1 == 2", iterations: int = 2, resolved: bool = True) -> Outcome:
    result = Outcome(stop=Stop.RESOLVED if resolved else Stop.NOT_RESOLVED, stop_reason="resolved in iteration 2" if resolved else "not resolved after 2 iterations",
                     issue_title="mean() crashes", issue_number=12, test_file="tests/agentcoder/test_issue_12.py",
                     reproduced=True, baseline=TestSummary(passed=3), files_changed=["stats.py", "tests/agentcoder/test_issue_12.py"],
                     best_iteration=1, wall_s=9.5, model_s=4.0, test_s=3.0)
    result.generated_tests = [
        GeneratedTest("tests/agentcoder/test_issue_12.py::test_empty", "fail_to_pass", "mean([]) raises ValueError",
                      EMPTY_CODE, "failed", "ZeroDivisionError: division by zero", "passed", ""),
        GeneratedTest("tests/agentcoder/test_issue_12.py::test_plain", "regression", "ordinary input unchanged",
                      "def test_plain():\n    assert mean([2, 4]) == 3", "passed", "", "passed", ""),
    ]
    result.tokens["programmer"] = Usage(1000, 200, 2, 3.0, "m", cost_usd=None)
    result.tokens["test_designer"] = Usage(300, 150, 1, 1.0)
    for number in range(1, iterations + 1):
        result.iterations.append(Iteration(
            number, f"plan {number}", ["stats.py"], [], TestSummary(passed=3), TestSummary(passed=1, failed=1, failing=["t::x"]),
            [], feedback if number < iterations or not resolved else "", {"programmer": Usage(500, 100, 1, 1.5)}, 4.0, 1.5, 1.5))
    return result


def test_pr_body_has_fixes_line_tests_log_and_usage():
    body = pr_body(outcome())
    assert "Fixes #12" in body
    assert "- `test_empty` (fail-to-pass): mean([]) raises ValueError" in body
    assert "- `test_plain` (regression): ordinary input unchanged" in body
    assert "<details><summary>Iteration log</summary>" in body and "### Iteration 2" in body
    assert "| programmer | 2 | 1000 | 200 | 3.0 s |" in body
    assert "loop overhead 2.5 s" in body
    assert "`stats.py`" in body.split("## Generated tests")[0]


def test_enormous_logs_are_trimmed_to_fit_githubs_limit():
    body = pr_body(outcome(feedback="E   " + "x" * 4000 + "\n", iterations=200))
    assert len(body) < GITHUB_BODY_LIMIT
    assert "the rest of the log was trimmed to fit GitHub's limit" in body
    assert body.rstrip().endswith("</sub>")  # the footer survives the trimming
    assert body.count("<details>") == body.count("</details>")
    assert body.count("````") % 2 == 0


def test_failure_report_names_the_branch_with_the_best_attempt():
    text = failure_report(outcome(resolved=False), "agentcoder/issue-12")
    assert text.startswith("AgentCoder could not resolve this issue: not resolved after 2 iterations.")
    assert "The best attempt (iteration 1) is on branch `agentcoder/issue-12`." in text
    assert "Failures fed back" in text and "assert 1 == 2" in text


def test_log_says_plainly_when_no_generated_tests_were_usable():
    result = outcome()
    result.generated_tests, result.reproduced = [], False
    assert "No generated tests could be used" in pr_body(result)
    assert "**Result:** resolved" in markdown_log(result)


def test_each_generated_test_shows_its_code_and_its_results_before_and_after():
    body = pr_body(outcome())
    tests = body.split("## Generated tests\n", 1)[1].split("\n## ", 1)[0]
    empty = tests.split("<details><summary><code>test_empty</code>", 1)[1].split("</details>", 1)[0]
    assert empty.startswith(": fail-to-pass, failed on the unchanged code, passed on the change</summary>")
    assert f"```python\n{EMPTY_CODE}\n```" in empty
    assert "On the unchanged code: **failed**\n\n```text\nZeroDivisionError: division by zero\n```" in empty
    assert "On the change: **passed**" in empty
    plain = tests.split("<details><summary><code>test_plain</code>", 1)[1].split("</details>", 1)[0]
    assert plain.startswith(": regression, passed on the unchanged code, passed on the change</summary>")
    assert "On the unchanged code: **passed**\n\nOn the change: **passed**" in plain


def test_evidence_cannot_break_out_of_its_fence_or_summary():
    hostile = GeneratedTest("t.py::test_x[</summary><b>]", "fail_to_pass", "x", "def test_x():\n    s = '````'\n",
                            "failed", "```\n</details>", "failed", "")
    block = evidence_block(hostile)
    assert "<code>test_x[&lt;/summary&gt;&lt;b&gt;]</code>" in block
    assert "`````python\ndef test_x():\n    s = '````'\n`````" in block
    assert "````text\n```\n</details>\n````" in block
    assert "On the change: **failed**" in block


def test_a_test_never_run_on_a_change_says_so():
    result = outcome()
    result.generated_tests[0].after = ""
    block = evidence_block(result.generated_tests[0])
    assert "failed on the unchanged code</summary>" in block and "On the change: not run (no change was tested)" in block


def test_many_large_tests_keep_the_body_within_githubs_limit():
    result = outcome(feedback="E   " + "y" * 4000 + "\n", iterations=50)
    result.generated_tests = [
        GeneratedTest(f"t.py::test_{n}", "fail_to_pass", f"case {n}", "def test_x():\n" + "    x = 1\n" * 600,
                      "failed", "AssertionError: " + "z" * 2000, "passed", "") for n in range(60)]
    body = pr_body(result)
    assert len(body) < GITHUB_BODY_LIMIT
    assert body.count("<details>") == body.count("</details>")
    assert "- `test_59` (fail-to-pass): case 59" in body  # every test keeps its one line
    assert "<code>test_0</code>" in body and "<code>test_59</code>" not in body
    assert "The evidence of " in body and "left out to fit GitHub's size limit" in body
    assert "# ...[trimmed]" in body  # a long test's code is cut, not dropped

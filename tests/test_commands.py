"""`/agentcoder retry ...` parsed into a typed command."""

import pytest

from bot.app.commands import RetryCommand, RetryKind, parse_retry


@pytest.mark.parametrize("text, expected", [
    ("", RetryCommand(RetryKind.GUIDANCE, "")),
    ("use a guard clause", RetryCommand(RetryKind.GUIDANCE, "use a guard clause")),
    ("  dropping the cache is fine  ", RetryCommand(RetryKind.GUIDANCE, "dropping the cache is fine")),
    ("tests: the expected mean of [2, 4] is 3, not 4", RetryCommand(RetryKind.TESTS, "the expected mean of [2, 4] is 3, not 4")),
    ("Tests:\nline one\nline two", RetryCommand(RetryKind.TESTS, "line one\nline two")),
    ("test : one", RetryCommand(RetryKind.TESTS, "one")),
    ("drop test_a test_b", RetryCommand(RetryKind.DROP, names=("test_a", "test_b"))),
    ("DROP `test_a`, tests/agentcoder/test_issue_3.py::test_b[1-2] test_a",
     RetryCommand(RetryKind.DROP, names=("test_a", "test_b"))),
])
def test_commands(text, expected):
    assert parse_retry(text) == expected


def test_only_guidance_reaches_the_programmer_and_only_tests_feedback_the_designer():
    guidance, tests, drop = parse_retry("be terse"), parse_retry("tests: wrong value"), parse_retry("drop test_x")
    assert (guidance.guidance, guidance.tests_feedback) == ("be terse", "")
    assert (tests.guidance, tests.tests_feedback) == ("", "wrong value")
    assert (drop.guidance, drop.tests_feedback) == ("", "")


@pytest.mark.parametrize("text, problem", [
    ("tests:", "say what is wrong with the tests after `tests:`"),
    ("drop", "name the generated tests to drop, e.g. `/agentcoder retry drop test_empty_list`"),
    ("drop test_a helper", "`helper` is not the name of a test function"),
    ("drop test_a <img src=x>", "`?img` is not the name of a test function"),
    ("drop " + " ".join(f"test_{n}" for n in range(60)), "drop at most 50 tests at a time"),
])
def test_commands_that_cannot_be_acted_on_get_a_one_line_answer(text, problem):
    command = parse_retry(text)
    assert command.problem == problem and "\n" not in command.problem

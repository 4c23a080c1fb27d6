"""Per-test evidence: the code of each generated test and the trimmed failure that shows the issue."""

from bot.loop.evidence import failure_excerpt, function_of, function_sources, result_of
from bot.sandbox.results import CollectionError, RunResult, TestOutcome

MODULE = '''import pytest


def helper():
    return 1


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    """Parametrized."""
    assert n


def test_plain():
    assert helper() == 1
'''

ASSERTION = '''def test_plain():
>       assert mean([2, 4]) == 4
E       assert 3.0 == 4
E        +  where 3.0 = mean([2, 4])

tests/agentcoder/test_issue_1.py:14: AssertionError'''

EXCEPTION = '''    def mean(values):
>       return sum(values) / len(values)
E       ZeroDivisionError: division by zero

calc/stats.py:3: ZeroDivisionError'''


def test_sources_hold_each_test_function_with_its_decorators_and_nothing_else():
    sources = function_sources(MODULE)
    assert sources == {
        "test_param": '@pytest.mark.parametrize("n", [1, 2])\ndef test_param(n):\n    """Parametrized."""\n    assert n',
        "test_plain": "def test_plain():\n    assert helper() == 1",
    }
    assert function_sources("def test_x(:\n") == {}


def test_failure_excerpt_keeps_the_assertion_or_exception_and_where_it_happened():
    assert failure_excerpt(ASSERTION) == ("assert 3.0 == 4\n+  where 3.0 = mean([2, 4])\n"
                                          "tests/agentcoder/test_issue_1.py:14: AssertionError")
    assert failure_excerpt(EXCEPTION) == "ZeroDivisionError: division by zero\ncalc/stats.py:3: ZeroDivisionError"
    assert failure_excerpt("Failed: DID NOT RAISE <class 'ValueError'>") == "Failed: DID NOT RAISE <class 'ValueError'>"


def test_failure_excerpt_is_bounded():
    long = "\n".join(f"E   line {n}" for n in range(100))
    text = failure_excerpt(long)
    assert text.splitlines()[-1] == "...[89 more lines]" and len(text.splitlines()) == 12
    assert failure_excerpt("E   " + "x" * 5000).endswith("...[trimmed]") and len(failure_excerpt("E   " + "x" * 5000)) < 900


def test_result_of_a_test_in_a_run():
    run = RunResult(tests=[TestOutcome("t.py::test_a", "passed"), TestOutcome("t.py::test_b", "failed", ASSERTION)])
    assert result_of(run, "t.py::test_a") == ("passed", "")
    assert result_of(run, "t.py::test_b")[0] == "failed" and "assert 3.0 == 4" in result_of(run, "t.py::test_b")[1]
    assert result_of(run, "t.py::test_c") == ("not run", "")
    broken = RunResult(collection_errors=[CollectionError("t.py", "E   ImportError: cannot import name 'mean'")])
    assert result_of(broken, "t.py::test_a") == (
        "error", "the module could not be collected:\nImportError: cannot import name 'mean'")
    killed = RunResult(tests=[TestOutcome("t.py::test_a", "passed")], timed_out=True, running_at_timeout="t.py::test_b")
    assert result_of(killed, "t.py::test_b") == ("failed", "timed out: the run was killed while this test ran")
    assert result_of(killed, "t.py::test_c")[0] == "not run"
    assert function_of("tests/x.py::test_a[1-2]") == "test_a" and function_of("tests/x.py::Cls::test_b") == "test_b"

"""Dropping generated tests, and what a revision of the test module changed."""

from bot.loop.revision import TestReview, drop_tests, module_change

MODULE = '''import pytest


def test_a():
    """A."""
    assert 1


@pytest.mark.parametrize("n", [1])
def test_b(n):
    assert n


class TestC:
    def test_c(self):
        assert True


def test_d():
    assert 2
'''


def test_drop_removes_the_named_functions_with_their_decorators_and_keeps_the_rest_byte_for_byte():
    assert drop_tests(MODULE, {"test_b", "test_d"}) == '''import pytest


def test_a():
    """A."""
    assert 1


class TestC:
    def test_c(self):
        assert True
'''
    assert drop_tests(MODULE, {"test_a"}).startswith("import pytest\n\n\n@pytest.mark.parametrize")


def test_module_change_names_added_removed_and_changed_tests():
    after = MODULE.replace("assert 2", "assert 3").replace('''def test_a():
    """A."""
    assert 1
''', '''def test_e():
    assert 5
''')
    change = module_change(MODULE, after, "tests/agentcoder/test_issue_1.py")
    assert (change.added, change.removed, change.changed) == (["test_e"], ["test_a"], ["test_d"])
    assert change.diff.startswith("--- a/tests/agentcoder/test_issue_1.py\n+++ b/tests/agentcoder/test_issue_1.py\n")
    assert "-    assert 2\n+    assert 3\n" in change.diff
    assert module_change(MODULE, MODULE, "t.py").diff == ""


def test_review_says_what_was_asked():
    review = TestReview(("the expected value is wrong", "x" * 700), ("test_a", "test_b"))
    assert review.requested and not TestReview().requested
    asked = review.asked()
    assert asked.startswith("the expected value is wrong\n\n" + "x" * 600 + "…\n\n")
    assert asked.endswith("drop test_a test_b")

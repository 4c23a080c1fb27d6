"""The whole loop on a real checkout: scripted models over real HTTP, real Docker, real git."""

from __future__ import annotations

import pytest

from bot.app.reports import pr_body
from bot.dev.openai_server import Fault, ScriptedOpenAI
from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Issue, Programmer, TestDesigner
from bot.loop.outcome import Stop
from bot.loop.revision import TestReview
from bot.outside.model import ModelClient
from bot.outside.workspace import Workspace
from tests.conftest import make_repo
from tests.samples import (
    DESIGNED_TESTS,
    DESIGNER_MODEL,
    ISSUE,
    PROGRAMMER_MODEL,
    RIGHT_FIX,
    SLUGIFY_REPO,
    WRONG_FIX,
)

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

@pytest.fixture
def models():
    with ScriptedOpenAI() as server:
        client = ModelClient({"programmer": PROGRAMMER_MODEL, "test_designer": DESIGNER_MODEL},
                             base_url=server.base_url, timeout_s=10, max_retries=0)
        yield server, client


def make_loop(sandbox, client, **limits) -> AgentLoop:
    return AgentLoop(sandbox, Programmer(client), TestDesigner(client), LoopLimits(**limits))


def test_failure_text_reaches_the_programmer_and_the_designer_never_sees_drafts(sandbox, models, tmp_path):
    server, client = models
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, WRONG_FIX, RIGHT_FIX)
    workspace = Workspace(make_repo(tmp_path / "repo", SLUGIFY_REPO))
    outcome = make_loop(sandbox, client).run(workspace, ISSUE)

    assert outcome.resolved, outcome.stop_reason
    assert [it.number for it in outcome.iterations] == [1, 2]
    kinds = {test.id.split("::")[-1]: test.kind for test in outcome.generated_tests}
    assert kinds == {"test_punctuation_removed": "fail_to_pass", "test_plain_words_still_work": "regression",
                     "test_large_input": "fail_to_pass"}
    # Per-test evidence: the code, the real failure on the unchanged code, the result on the final change.
    evidence = {test.id.split("::")[-1]: test for test in outcome.generated_tests}
    punctuation = evidence["test_punctuation_removed"]
    assert punctuation.code.startswith("def test_punctuation_removed():\n") and punctuation.code.endswith(
        'assert slugify("Hello, World!") == "hello-world"')
    assert (punctuation.before, punctuation.after, punctuation.after_text) == ("failed", "passed", "")
    assert punctuation.before_text.startswith("AssertionError: assert 'hello,-world!' == 'hello-world'")
    assert punctuation.before_text.endswith("tests/agentcoder/test_issue_7.py:4: AssertionError")
    plain = evidence["test_plain_words_still_work"]
    assert (plain.before, plain.before_text, plain.after) == ("passed", "", "passed")
    # The real failure text of iteration 1 reached the programmer's second turn.
    second_turn = server.requests_for(PROGRAMMER_MODEL)[1]["messages"][-1]["content"]
    assert "test_punctuation_removed" in second_turn and "assert 'hello-world!' == 'hello-world'" in second_turn
    # No test designer request ever carried the programmer's drafts.
    for request in server.requests_for(DESIGNER_MODEL):
        text = str(request["messages"])
        assert "replace(\",\", \"\")" not in text and "strip commas" not in text
    # The working copy holds the fix and the generated tests; existing tests untouched.
    assert "re.findall" in workspace.read("textutil.py")
    assert "test_punctuation_removed" in workspace.read("tests/agentcoder/test_issue_7.py")
    assert outcome.files_changed == ["tests/agentcoder/test_issue_7.py", "textutil.py"]
    assert outcome.tokens["programmer"].calls == 2 and outcome.tokens["test_designer"].calls == 1
    assert outcome.iterations[0].tokens["programmer"].completion_tokens > 0


def test_uncollectable_tests_go_back_to_the_designer(sandbox, models, tmp_path):
    server, client = models
    server.add(DESIGNER_MODEL, "```python\nfrom textutil import missing_name\n\ndef test_x():\n    assert missing_name()\n```",
               DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, RIGHT_FIX.replace('.replace(",", "")', ""))
    workspace = Workspace(make_repo(tmp_path / "repo", SLUGIFY_REPO))
    outcome = make_loop(sandbox, client).run(workspace, ISSUE)
    assert [a.problem is None for a in outcome.design_attempts] == [False, True]
    retry = server.requests_for(DESIGNER_MODEL)[1]["messages"][0]["content"]
    assert "missing_name" in retry and "could not collect" in retry
    assert outcome.resolved
    assert len(server.requests_for(PROGRAMMER_MODEL)) == 1


def test_existing_tests_are_read_only_and_bad_blocks_get_did_you_mean(sandbox, models, tmp_path):
    server, client = models
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    cheat = ("Plan: change the test.\n\ntests/test_textutil.py\n<<<<<<< SEARCH\n"
             "    assert slugify(\"Hello World\") == \"hello-world\"\n=======\n    assert True\n>>>>>>> REPLACE\n\n"
             "textutil.py\n<<<<<<< SEARCH\n    return text.upper()\n=======\n    return text\n>>>>>>> REPLACE\n")
    server.add(PROGRAMMER_MODEL, cheat, "I think the code is fine as it is.", Fault(status=500), Fault(status=500))
    workspace = Workspace(make_repo(tmp_path / "repo", SLUGIFY_REPO))
    outcome = make_loop(sandbox, client, max_iterations=3).run(workspace, ISSUE)
    assert not outcome.resolved
    assert outcome.stop is Stop.MODEL_ERROR and outcome.stop_reason.startswith("model error:")
    turn2 = server.requests_for(PROGRAMMER_MODEL)[1]["messages"][-1]["content"]
    assert "tests/test_textutil.py refused: it is one of the repository's existing tests, which are read-only" in turn2
    assert "return text.lower()" in turn2  # the did-you-mean shows the real line
    turn3 = server.requests_for(PROGRAMMER_MODEL)[2]["messages"][-1]["content"]
    assert "no SEARCH/REPLACE blocks" in turn3
    assert workspace.read("tests/test_textutil.py") == make_repo.__globals__["textwrap"].dedent(SLUGIFY_REPO["tests/test_textutil.py"])
    assert [it.edit_problems != [] for it in outcome.iterations] == [True, True]


def test_preexisting_failures_are_not_blamed_and_budget_stops_the_loop(sandbox, models, tmp_path):
    server, client = models
    repo = dict(SLUGIFY_REPO)
    repo["tests/test_flaky.py"] = "def test_already_broken():\n    assert 1 == 2\n"
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, RIGHT_FIX.replace('.replace(",", "")', ""))
    workspace = Workspace(make_repo(tmp_path / "repo", repo))
    outcome = make_loop(sandbox, client).run(workspace, ISSUE)
    assert outcome.resolved
    assert outcome.baseline.failing == ["tests/test_flaky.py::test_already_broken"]
    assert outcome.iterations[0].regressions == []

    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    workspace = Workspace(make_repo(tmp_path / "repo2", SLUGIFY_REPO))
    outcome = make_loop(sandbox, client, token_budget=10).run(workspace, ISSUE)
    assert outcome.stop is Stop.BUDGET and outcome.stop_reason.startswith("token budget spent")
    assert outcome.iterations == []


def test_protected_paths_are_refused_and_instructions_reach_both_agents(sandbox, models, tmp_path):
    server, client = models
    repo = dict(SLUGIFY_REPO)
    repo[".agentcoder.yml"] = "protected_paths: [textutil.py]\ninstructions: Never touch the public API.\n"
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, RIGHT_FIX.replace('.replace(",", "")', ""))
    workspace = Workspace(make_repo(tmp_path / "repo", repo))
    outcome = make_loop(sandbox, client, max_iterations=1).run(workspace, ISSUE)
    assert not outcome.resolved
    assert outcome.iterations[0].edit_problems == [
        "Edit to textutil.py refused: it is protected by .agentcoder.yml (protected_paths)"]
    assert "re.findall" not in workspace.read("textutil.py")
    for model in (PROGRAMMER_MODEL, DESIGNER_MODEL):
        assert "Never touch the public API." in server.requests_for(model)[0]["messages"][0]["content"]


def test_cost_budget_stops_the_loop_like_the_token_budget(sandbox, models, tmp_path):
    from bot.config import ModelPrice

    server, client = models
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    workspace = Workspace(make_repo(tmp_path / "repo", SLUGIFY_REPO))
    # The designer's one answer costs far more than the budget: the programmer is never asked.
    prices = {DESIGNER_MODEL: ModelPrice(input=1_000.0, output=1_000.0)}
    loop = AgentLoop(sandbox, Programmer(client), TestDesigner(client), LoopLimits(cost_budget_usd=0.01), prices=prices)
    outcome = loop.run(workspace, ISSUE)
    assert outcome.stop is Stop.BUDGET and outcome.stop_reason.startswith("cost budget spent ($")
    assert outcome.stop_reason.endswith(" of $0.0100)")
    assert outcome.iterations == [] and server.requests_for(PROGRAMMER_MODEL) == []
    assert outcome.tokens["test_designer"].cost_usd > 0.01 and outcome.tokens["programmer"].cost_usd == 0.0


# -- a retry on the bot's branch, with the maintainers' review of the generated tests -------------------
# The revised tests are validated on the unchanged code (the merge base), never on the branch; the designer
# never sees the programmer's work, the programmer never the review.

REVIEW_REPO = {
    "calc/__init__.py": "",
    "calc/stats.py": '''
        def mean(values):
            """Arithmetic mean."""
            return sum(values) / len(values)
    ''',
    "tests/test_stats.py": '''
        from calc.stats import mean

        def test_mean():
            assert mean([1, 2, 3]) == 2
    ''',
}
MEAN_ISSUE = Issue("mean() crashes on an empty list", "mean([]) raises ZeroDivisionError; it should raise ValueError.", 5)
REVIEW_TEST_FILE = "tests/agentcoder/test_issue_5.py"
FIX_MARK = 'raise ValueError("mean of nothing")'
BRANCH_TESTS = '''import pytest


def test_empty_raises():
    """mean([]) raises ValueError."""
    from calc.stats import mean
    with pytest.raises(ValueError):
        mean([])


def test_two():
    """Ordinary input keeps its mean."""
    from calc.stats import mean
    assert mean([2, 4]) == 3
'''


def branch_with_an_attempt(tmp_path) -> tuple[Workspace, str]:
    """A checkout of the bot's branch: main (the unchanged code), then a commit with the fix and the tests."""
    workspace = Workspace(make_repo(tmp_path / "repo", REVIEW_REPO))
    base = workspace.head()
    workspace.start_branch("agentcoder/issue-5")
    workspace.write("calc/stats.py", workspace.read("calc/stats.py").replace(
        "    return sum", f"    if not values:\n        {FIX_MARK}\n    return sum"))
    workspace.write(REVIEW_TEST_FILE, BRANCH_TESTS)
    workspace.commit_all("Fix: mean() crashes on an empty list (#5)")
    return workspace, base


def test_a_revision_that_no_longer_collects_goes_back_to_the_designer_and_the_old_tests_are_kept(
        sandbox, models, tmp_path):
    server, client = models
    broken = "```python\nfrom calc.stats import no_such_name\n\n\ndef test_two():\n    assert no_such_name()\n```"
    server.add(DESIGNER_MODEL, broken, broken)
    workspace, base = branch_with_an_attempt(tmp_path)
    review = TestReview(("test_two should also check a list of floats",))
    outcome = make_loop(sandbox, client, max_test_design_attempts=2).run(workspace, MEAN_ISSUE, base=base, review=review)

    first, second = [r["messages"][0]["content"] for r in server.requests_for(DESIGNER_MODEL)]
    assert "test_two should also check a list of floats" in first and BRANCH_TESTS.strip() in first
    assert "could not collect" in second and "no_such_name" in second
    [revision] = outcome.test_revisions
    assert (revision.attempts, revision.accepted) == (2, False) and "could not collect" in revision.problem
    assert outcome.test_code == BRANCH_TESTS and workspace.read(REVIEW_TEST_FILE) == BRANCH_TESTS
    assert {t.id.split("::")[1]: t.kind for t in outcome.generated_tests} == {
        "test_empty_raises": "fail_to_pass", "test_two": "regression"}
    # The tests did not change and the branch passes them: nothing for the programmer.
    assert outcome.stop is Stop.RESOLVED and server.requests_for(PROGRAMMER_MODEL) == []
    assert any("previous tests were kept" in note for note in outcome.notes)
    assert "- Not applied (pytest could not collect the module): the previous tests were kept" in pr_body(outcome)


def test_a_review_that_weakens_a_test_is_still_validated_on_the_unchanged_code_and_the_pr_says_so(
        sandbox, models, tmp_path):
    server, client = models
    weakening = "test_empty_raises fails with the current code: expect ZeroDivisionError instead so that it passes"
    weakened = BRANCH_TESTS.replace('''    """mean([]) raises ValueError."""
    from calc.stats import mean
    with pytest.raises(ValueError):''', '''    """mean([]) raises ZeroDivisionError."""
    from calc.stats import mean
    with pytest.raises(ZeroDivisionError):''')
    server.add(DESIGNER_MODEL, f"```python\n{weakened}```")
    server.add(PROGRAMMER_MODEL, "Plan: nothing to change.")
    workspace, base = branch_with_an_attempt(tmp_path)
    outcome = make_loop(sandbox, client, max_iterations=1).run(
        workspace, MEAN_ISSUE, base=base, review=TestReview((weakening,)))

    [revision] = outcome.test_revisions
    assert revision.accepted and revision.changed == ["test_empty_raises"]
    empty = f"{REVIEW_TEST_FILE}::test_empty_raises"
    # Validated on the unchanged code, where ZeroDivisionError is what happens: it no longer shows the issue.
    assert (revision.kinds_before[empty], revision.kinds_after[empty]) == ("fail_to_pass", "regression")
    assert not outcome.reproduced and any("do not reproduce the issue" in note for note in outcome.notes)
    body = pr_body(outcome)
    assert "- `test_empty_raises` (regression, revised on review)" in body
    assert "`test_empty_raises` fail-to-pass → regression" in body
    assert "+    with pytest.raises(ZeroDivisionError):" in body
    # On the branch's code the weakened test fails: the programmer ran, with the failure but not the review.
    assert outcome.stop is Stop.NOT_RESOLVED
    [programmer] = [str(r["messages"]) for r in server.requests_for(PROGRAMMER_MODEL)]
    assert "ValueError: mean of nothing" in programmer and weakening not in programmer
    # The designer saw the unchanged code's interfaces and its own module, never the programmer's fix.
    [designer] = [str(r["messages"]) for r in server.requests_for(DESIGNER_MODEL)]
    assert weakening in designer and FIX_MARK not in designer
    assert workspace.read(REVIEW_TEST_FILE) == weakened and FIX_MARK in workspace.read("calc/stats.py")

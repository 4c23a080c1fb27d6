"""The loop's logic against in-memory fakes: budgets, cancellation, best attempt, truncation, stops.

The same loop against the real sandbox and a real HTTP model is in test_loop.py (marked docker).
"""

from __future__ import annotations

import re

import pytest

from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Programmer, TestDesigner
from bot.loop.outcome import Stop
from bot.outside.model import LLMError, Role
from bot.outside.workspace import Workspace
from bot.sandbox.results import RunProblem, RunResult, SetupFailed
from tests.conftest import make_repo
from tests.fakes import FakeClock, FakeModel, FakeRunner, run_of, uncollectable
from tests.samples import NEW, REPO, RIGHT, RIGHT_FIRST, SUITE, TESTS, WRONG, judge
from tests.samples import TEXTUTIL_ISSUE as ISSUE


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(make_repo(tmp_path / "repo", REPO))


def make_loop(runner, model, clock=None, is_cancelled=lambda: False, **limits) -> AgentLoop:
    return AgentLoop(runner, Programmer(model), TestDesigner(model), LoopLimits(**limits),
                     is_cancelled=is_cancelled, clock=clock or FakeClock())


def test_the_real_failure_reaches_the_programmer_and_the_designer_never_sees_a_draft(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[WRONG, RIGHT])
    outcome = make_loop(FakeRunner(judge), model).run(workspace, ISSUE)

    assert outcome.stop is Stop.RESOLVED and outcome.stop_reason == "resolved in iteration 2"
    assert [test.kind for test in outcome.generated_tests] == ["fail_to_pass"]
    assert "assert 'hello,-world!' == 'hello-world'" in model.requests[-1][1][-1]["content"]
    assert "strip commas" not in model.texts_seen_by(Role.TEST_DESIGNER)
    assert workspace.read("textutil.py").count("re.findall") == 1
    assert outcome.to_json()["stop"] == "resolved"


def test_the_token_budget_stops_the_loop_with_a_budget_stop(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[WRONG])
    outcome = make_loop(FakeRunner(judge), model, token_budget=1).run(workspace, ISSUE)
    assert outcome.stop is Stop.BUDGET and outcome.stop_reason.startswith("token budget spent")
    assert not outcome.iterations


def test_the_wall_time_budget_stops_the_loop_between_iterations(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[WRONG])
    clock = FakeClock(step=100.0)  # every reading of the clock is 100 s later
    outcome = make_loop(FakeRunner(judge), model, clock, wall_time_budget_s=450.0, max_iterations=5).run(workspace, ISSUE)
    assert outcome.stop is Stop.BUDGET and outcome.stop_reason == "wall-time budget spent (450 s)"
    assert 1 <= len(outcome.iterations) < 5


def test_a_cancelled_job_stops_before_the_next_model_call(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[WRONG])
    calls = iter([False, False, True])
    outcome = make_loop(FakeRunner(judge), model, is_cancelled=lambda: next(calls, True)).run(workspace, ISSUE)
    assert outcome.stop is Stop.CANCELLED
    assert len(outcome.iterations) == 1
    assert sum(1 for role, _ in model.requests if role is Role.PROGRAMMER) == 1


def test_the_best_attempt_is_restored_when_no_iteration_resolves(workspace):
    half = WRONG.replace('.replace(",", "")', '.replace(",", "").replace("!", "")')
    worse = '''Plan: break it.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(",", "").replace("!", "").replace(" ", "-")
=======
    return None
>>>>>>> REPLACE
'''

    def strict(files, selection):
        body = files["textutil.py"]
        suite = "failed" if "return None" in body else "passed"
        if selection:
            return run_of({NEW: "failed"})
        return run_of({SUITE: suite})

    model = FakeModel(test_designer=[TESTS], programmer=[half, worse])
    outcome = make_loop(FakeRunner(strict), model, max_iterations=2).run(workspace, ISSUE)
    assert outcome.stop is Stop.NOT_RESOLVED and outcome.stop_reason == "not resolved after 2 iterations"
    assert outcome.best_iteration == 1
    assert 'replace("!", "")' in workspace.read("textutil.py")
    assert outcome.iterations[1].regressions == [SUITE]


def test_a_truncated_answer_is_said_in_the_next_turn(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[(WRONG, True), RIGHT])
    outcome = make_loop(FakeRunner(judge), model).run(workspace, ISSUE)
    assert outcome.resolved
    assert "cut off at the model's length limit" in model.requests[-1][1][-1]["content"]


def test_an_answer_without_blocks_is_told_so(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=["I would change slugify.", RIGHT_FIRST])
    outcome = make_loop(FakeRunner(judge), model).run(workspace, ISSUE)
    assert outcome.resolved and outcome.iterations[0].files_changed == []
    assert "held no SEARCH/REPLACE blocks" in model.requests[-1][1][-1]["content"]


def test_setup_that_fails_on_the_unchanged_code_stops_as_setup_failed(workspace):
    def broken(files, selection):
        raise SetupFailed("pip: no matching distribution for left-pad")

    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])
    outcome = make_loop(FakeRunner(broken), model).run(workspace, ISSUE)
    assert outcome.stop is Stop.SETUP_FAILED
    assert "left-pad" in outcome.notes[0] and not model.requests


def test_setup_that_breaks_after_the_change_is_a_typed_problem_not_a_fake_test(workspace):
    def after_change(files, selection):
        if "re.findall" in files["textutil.py"] and not selection:
            raise SetupFailed("the change broke setup.py")
        return judge(files, selection)

    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])
    outcome = make_loop(FakeRunner(after_change), model, max_iterations=1).run(workspace, ISSUE)
    assert outcome.stop is Stop.NOT_RESOLVED
    first = outcome.iterations[0]
    assert first.suite.problem is RunProblem.SETUP_FAILED and first.regressions == []
    assert "the change broke setup.py" in first.feedback


def test_a_malformed_agentcoder_yml_stops_as_config_error_before_any_model_call(tmp_path):
    workspace = Workspace(make_repo(tmp_path / "repo", {**REPO, ".agentcoder.yml": "colour: blue\n"}))
    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])
    outcome = make_loop(FakeRunner(judge), model).run(workspace, ISSUE)
    assert outcome.stop is Stop.CONFIG_ERROR and "'colour'" in outcome.stop_reason
    assert not model.requests


def test_a_model_error_stops_as_model_error(workspace):
    model = FakeModel(test_designer=[LLMError("the model server answered HTTP 500")])
    outcome = make_loop(FakeRunner(judge), model).run(workspace, ISSUE)
    assert outcome.stop is Stop.MODEL_ERROR and "HTTP 500" in outcome.stop_reason


def test_an_uncollectable_test_module_goes_back_to_the_designer(workspace):
    attempts = iter([uncollectable("tests/agentcoder/test_issue_7.py", "ImportError: No module named 'slugs'")])

    def first_uncollectable(files, selection):
        return next(attempts, None) or judge(files, selection) if selection else judge(files, selection)

    model = FakeModel(test_designer=[TESTS, TESTS], programmer=[RIGHT_FIRST])
    outcome = make_loop(FakeRunner(first_uncollectable), model).run(workspace, ISSUE)
    assert outcome.resolved
    assert [attempt.problem is None for attempt in outcome.design_attempts] == [False, True]
    designer_prompts = [messages[-1]["content"] for role, messages in model.requests if role is Role.TEST_DESIGNER]
    assert "No module named 'slugs'" in designer_prompts[1]


def test_a_repository_without_tests_is_judged_by_the_new_tests(tmp_path):
    workspace = Workspace(make_repo(tmp_path / "repo", {"textutil.py": REPO["textutil.py"]}))

    def no_suite(files, selection):
        return judge(files, selection) if selection else RunResult(exit_code=5)

    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])
    outcome = make_loop(FakeRunner(no_suite), model).run(workspace, ISSUE)
    assert outcome.resolved and outcome.baseline.problem is RunProblem.NO_TESTS


def test_the_json_log_names_the_stop_and_the_agents_by_role(workspace):
    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])
    data = make_loop(FakeRunner(judge), model).run(workspace, ISSUE).to_json()
    assert data["stop"] == "resolved" and data["resolved"] is True
    assert set(data["tokens"]) == {"programmer", "test_designer"}
    assert re.fullmatch(r"resolved in iteration \d", data["stop_reason"])

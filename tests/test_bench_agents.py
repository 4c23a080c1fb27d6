"""Agent mode of `agentcoder bench`: scripted models over real HTTP, the real loop, the real Docker sandbox.

The scripted test designer writes tests from the task text its request carries (MBPP's shown assert,
HumanEval's doctest examples); the scripted programmer answers SEARCH/REPLACE blocks per task: right at
once, right on the second turn, or always wrong. The dataset's hidden tests must reach neither the
models nor the loop's sandbox runs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import threading

import pytest

from bot.bench.agents import (
    canonical_source,
    format_agents_report,
    stub_source,
    task_issue,
)
from bot.bench.run import BenchInputError, run_bench
from bot.bench.tasks import load_tasks
from bot.composition import build_loop
from bot.config import load_settings
from bot.dev.openai_server import ScriptedOpenAI
from bot.outside.model import ModelClient
from bot.sandbox.executor import Sandbox
from tests.conftest import free_port

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

PROGRAMMER_MODEL, DESIGNER_MODEL = "bench-coder", "bench-tester"
WRONG_TEST = {"Mbpp/14": "assert find_Volume(1, 1, 1) == 999",
              "HumanEval/1": "assert separate_paren_groups('()') == []"}
# entry point → how the scripted programmer behaves: right at once, wrong then right, always wrong
PLAYS = {"remove_Occ": "right", "sort_matrix": "late", "find_Volume": "wrong",
         "has_close_elements": "right", "separate_paren_groups": "right", "truncate_number": "wrong"}
TASKS = {task.entry_point: task for name in ("mbpp", "humaneval") for task in load_tasks(name)[:3]}


class RecordingSandbox(Sandbox):
    """The real sandbox, keeping the text of every file each test run could see."""

    def __init__(self, real: Sandbox):
        super().__init__(real.client, real.base_image, real.limits, timeout_s=real.timeout_s)
        self.runs: list[str] = []
        self._lock = threading.Lock()

    def run_tests(self, repo, config, extra_files=None, selection=(), image=None):
        texts = [path.read_text(errors="replace") for path in sorted(repo.rglob("*"))
                 if path.is_file() and ".git" not in path.relative_to(repo).parts]
        with self._lock:
            self.runs.append("\n".join(texts + list((extra_files or {}).values())))
        return super().run_tests(repo, config, extra_files, selection, image)


def designer_answer(prompt: str, entry_point: str, task_id: str) -> str:
    """Tests from the text in the request only: the asserts shown, or the doctest examples."""
    checks = [line.strip() for line in prompt.splitlines() if line.startswith("assert ")]
    checks += [f"assert {call} == {expected.strip()}"
               for call, expected in re.findall(r"^\s*>>> (.+)\n(.+)$", prompt, re.MULTILINE)]
    checks = list(dict.fromkeys(checks))  # an example may appear in the task text and in the code shown
    if task_id in WRONG_TEST:
        checks.append(WRONG_TEST[task_id])
    tests = [f'def test_example_{number}():\n    """Example {number} of the task."""\n'
             f"    from solution import {entry_point}\n    {check}\n"
             for number, check in enumerate(checks, start=1)]
    return "Tests:\n\n```python\n" + "\n\n".join(tests) + "```\n"


def programmer_answer(task, turn: int) -> str:
    """A SEARCH/REPLACE block: the canonical solution, or a wrong body, by the task's play and the turn."""
    play = PLAYS[task.entry_point]
    stub = stub_source(task)
    wrong = stub.replace("raise NotImplementedError", "return None")
    if play == "wrong" or (play == "late" and turn == 1):
        search, replace = stub, wrong
    else:
        search = wrong if play == "late" else stub
        replace = canonical_source(task).rstrip("\n") + "\n"
    return (f"Plan: write {task.entry_point}.\n\n"
            f"solution.py\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")


def answer(request: dict) -> str:
    """The scripted models' default: answer by role, for the task named in the issue title."""
    first = request["messages"][0]["content"]
    entry_point = re.search(r"^# Issue: Implement (\w+)$", first, re.MULTILINE).group(1)
    task = TASKS[entry_point]
    if request["model"] == DESIGNER_MODEL:
        return designer_answer(first, entry_point, task.task_id)
    turn = 1 + sum(message["role"] == "assistant" for message in request["messages"])
    return programmer_answer(task, turn)


@pytest.fixture(scope="module")
def recording_sandbox():
    settings = load_settings()
    return RecordingSandbox(Sandbox.from_settings(settings))


def bench(name, sandbox, *, limit=3, show_tests="first", as_json=True, base_url=None, **settings):
    with ScriptedOpenAI(default=answer) as server:
        model = ModelClient({"programmer": PROGRAMMER_MODEL, "test_designer": DESIGNER_MODEL},
                            base_url=base_url or server.base_url, timeout_s=10, max_retries=0)
        args = argparse.Namespace(benchmark=name, completions=None, limit=limit, show_tests=show_tests,
                                  json=as_json)
        messages: list[str] = []
        bench_settings = load_settings(max_iterations=2, concurrent_jobs=2, **settings)
        make_loop = lambda progress: build_loop(bench_settings, sandbox, model, progress=progress)  # noqa: E731
        try:
            code, out = 0, run_bench(args, bench_settings, sandbox, make_loop, progress=messages.append)
        except BenchInputError as exc:
            code, out = 2, str(exc)
        return code, out, server.requests, messages


@pytest.fixture(scope="module")
def mbpp_run(recording_sandbox):
    recording_sandbox.runs.clear()
    code, report, requests, messages = bench("mbpp", recording_sandbox)
    return code, report, requests, list(recording_sandbox.runs), messages


@pytest.fixture(scope="module")
def humaneval_run(recording_sandbox):
    recording_sandbox.runs.clear()
    code, report, requests, _ = bench("humaneval", recording_sandbox)
    return code, report, requests, list(recording_sandbox.runs)


def test_mbpp_pass_at_1_histogram_tokens_and_designer_accuracy(mbpp_run):
    code, report, requests, runs, _ = mbpp_run
    assert code == 0
    assert (report["mode"], report["pass_at_1"], report["passed"], report["total"]) == ("agents", round(2 / 3, 4), 2, 3)
    tasks = {task["task_id"]: task for task in report["tasks"]}
    assert [(t["task_id"], t["passed"], t["iterations"], t["loop_resolved"]) for t in report["tasks"]] == [
        ("Mbpp/11", True, 1, True), ("Mbpp/12", True, 2, True), ("Mbpp/14", False, 2, False)]
    assert tasks["Mbpp/14"]["result"].startswith("failed: AssertionError")
    assert report["iteration_histogram"] == {"1": 1, "2": 2}
    # One test per task from the shown assert, plus a wrong one for Mbpp/14 that the canonical solution fails.
    assert [(t["designed_tests"], t["designed_tests_correct"]) for t in report["tasks"]] == [(1, 1), (1, 1), (2, 1)]
    accuracy = (report["test_designer_accuracy"], report["designed_tests"], report["designed_tests_correct"])
    assert accuracy == (0.75, 4, 3)
    # Tokens: the stand-in counts ceil(chars / 4) of each request and answer; the report sums them per agent.
    for agent, model in (("programmer", PROGRAMMER_MODEL), ("test_designer", DESIGNER_MODEL)):
        assert all(task["tokens"][agent] > 0 for task in report["tasks"])
        assert report["tokens"][agent] == sum(task["tokens"][agent] for task in report["tasks"])
    assert len([r for r in requests if r["model"] == PROGRAMMER_MODEL]) == 1 + 2 + 2
    assert len([r for r in requests if r["model"] == DESIGNER_MODEL]) == 3
    # Cost per task: baseline, design validation, two runs per iteration, one accuracy run.
    assert len(runs) == 5 + 7 + 7
    json.dumps(report)


def test_mbpp_hidden_asserts_reach_neither_the_models_nor_the_loops_runs(mbpp_run):
    _, _, requests, runs, _ = mbpp_run
    sent = "\n".join(json.dumps(request) for request in requests)
    seen = "\n".join(runs)
    for task in load_tasks("mbpp")[:3]:
        assert json.dumps(task.test_list[0])[1:-1] in sent  # the shown assert did reach the agents
        for hidden in task.test_list[1:]:
            assert json.dumps(hidden)[1:-1] not in sent
            assert hidden not in seen


def test_humaneval_scores_by_hidden_tests_not_by_the_loops_verdict(humaneval_run):
    code, report, requests, runs = humaneval_run
    assert code == 0
    assert [(t["task_id"], t["passed"], t["iterations"], t["loop_resolved"]) for t in report["tasks"]] == [
        ("HumanEval/0", True, 1, True),
        # The designer's wrong test keeps the loop from resolving it; the hidden tests pass it all the same.
        ("HumanEval/1", True, 2, False),
        ("HumanEval/2", False, 2, False)]
    assert report["pass_at_1"] == round(2 / 3, 4) and report["iteration_histogram"] == {"1": 1, "2": 2}
    # Two doctest examples for /0, one for /1 plus a wrong one, one for /2.
    assert [(t["designed_tests"], t["designed_tests_correct"]) for t in report["tasks"]] == [(2, 2), (2, 1), (1, 1)]
    assert report["test_designer_accuracy"] == 0.8
    assert report["show_tests"] is None


def test_humaneval_check_code_reaches_neither_the_models_nor_the_loops_runs(humaneval_run):
    _, _, requests, runs = humaneval_run
    sent = "\n".join(json.dumps(request) for request in requests)
    seen = "\n".join(runs)
    for task in load_tasks("humaneval")[:3]:
        hidden = [line.strip() for line in task.test.splitlines() if "candidate" in line]
        assert hidden and "def check(candidate):" in hidden
        for line in hidden:
            assert json.dumps(line)[1:-1] not in sent and line not in seen
        example = next(line.strip() for line in task.prompt.splitlines() if ">>>" in line)
        assert json.dumps(example)[1:-1] in sent  # the prompt's own examples did reach the agents


def test_text_report_names_the_figures_and_the_failures(mbpp_run):
    _, report, _, _, messages = mbpp_run
    text = format_agents_report(report)
    lines = text.splitlines()
    assert lines[0].startswith("mbpp (agents, first assert(s) shown): pass@1 66.7% (2/3 passed) in ")
    assert lines[1] == "iterations used: 1 → 1 task, 2 → 2 tasks"
    assert lines[2].startswith(f"tokens: programmer {report['tokens']['programmer']:,}, test designer ")
    assert lines[3] == "test designer accuracy: 75.0% (3 of 4 designed tests pass on the canonical solution)"
    assert lines[4] == "the loop judged 2 of 3 task(s) resolved by its own tests"
    assert lines[5:] == ["not passed:",
                         f"  Mbpp/14: {report['tasks'][2]['result']} (loop: not resolved after 2 iterations)"]
    assert "Mbpp/12: resolved in iteration 2 (2 iteration(s))" in messages


def test_stubs_and_issues_show_only_what_the_agents_may_see():
    mbpp = load_tasks("mbpp")
    task = mbpp[0]
    assert stub_source(task) == ('def remove_Occ(arg1, arg2):\n'
                                 '    """Write a python function to remove first and last occurrence of a given'
                                 ' character from the string."""\n    raise NotImplementedError\n')
    first, every = task_issue(task, "first").body, task_issue(task, "all").body
    assert task.test_list[0] in first and not any(test in first for test in task.test_list[1:])
    assert all(test in every for test in task.test_list)
    for other in [*mbpp, *load_tasks("humaneval")]:
        ast.parse(stub_source(other))
        assert "def check(" not in task_issue(other, "all").body and "candidate(" not in task_issue(other, "all").body


def test_limit_and_json_through_the_command_line(tmp_path):
    with ScriptedOpenAI(default=answer) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER_MODEL,
               "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER_MODEL, "AGENTCODER_LLM_MAX_RETRIES": "0",
               "AGENTCODER_MAX_ITERATIONS": "2"}
        env.pop("OPENAI_API_KEY", None)
        done = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "mbpp", "--limit", "1", "--json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert [task["task_id"] for task in report["tasks"]] == ["Mbpp/11"]
        figures = (report["pass_at_1"], report["iteration_histogram"], report["test_designer_accuracy"])
        assert figures == (1.0, {"1": 1}, 1.0)
        assert len(server.requests) == 2  # one designer and one programmer request: no other task was started
        assert "[agentcoder] Mbpp/11: resolved in iteration 1" in done.stderr


def test_unreachable_model_stops_after_the_first_task_with_exit_2(recording_sandbox, unused_port):
    recording_sandbox.runs.clear()
    code, message, _, _ = bench("mbpp", recording_sandbox, base_url=f"http://127.0.0.1:{unused_port}/v1")
    assert code == 2
    assert message.startswith("model error: cannot reach the model server at http://127.0.0.1:")
    assert len(recording_sandbox.runs) == 1  # the first task's baseline; no other task ran


@pytest.mark.parametrize(("limit", "show_tests", "expected"), [
    (0, "first", "--limit must be at least 1, not 0"),
    (2, "some", "--show-tests must be one of first, all, not 'some'"),
])
def test_usage_errors_exit_2_with_one_line(recording_sandbox, limit, show_tests, expected):
    code, message, requests, _ = bench("mbpp", recording_sandbox, limit=limit, show_tests=show_tests)
    assert (code, message, requests) == (2, expected, [])


@pytest.fixture
def unused_port():
    return free_port()

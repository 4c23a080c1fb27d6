"""Benchmark scoring: datasets, completions files, program building, and scoring in the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.bench.protocol import (
    SENTINEL,
    build_program,
    is_whole_function,
    run_score,
    score_completions,
)
from bot.bench.tasks import (
    BenchInputError,
    agent_prompt,
    canonical_completions,
    load_tasks,
    normalise_task_id,
    read_completions,
)
from bot.dev.serving import ThreadedServer

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

IMAGE = "agentcoder-sandbox:bookworm"


@pytest.fixture(scope="module")
def humaneval():
    return {task.task_id: task for task in load_tasks("humaneval")}


@pytest.fixture(scope="module")
def mbpp():
    return {task.task_id: task for task in load_tasks("mbpp")}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def by_id(scores):
    return {score.task_id: score for score in scores}


# -- datasets -------------------------------------------------------------------------


def test_humaneval_has_164_uniform_tasks(humaneval):
    assert len(humaneval) == 164
    first = humaneval["HumanEval/0"]
    assert first.benchmark == "humaneval"
    assert first.entry_point == "has_close_elements"
    assert first.prompt.startswith("from typing import List")
    assert "def check(candidate):" in first.test
    assert first.canonical_solution.startswith("    ")
    assert first.text == "" and first.test_list == ()


def test_mbpp_has_257_tasks_with_entry_points_from_the_first_assert(mbpp):
    assert len(mbpp) == 257
    task = mbpp["Mbpp/11"]
    assert task.benchmark == "mbpp"
    assert task.entry_point == "remove_Occ"
    assert task.text.startswith("Write a python function to remove first and last occurrence")
    assert task.test_list[0] == 'assert remove_Occ("hello","l") == "heo"'
    assert task.test == "\n".join(task.test_list)
    # The solution defines helpers too; the entry point is the one the tests call.
    assert mbpp["Mbpp/18"].entry_point == "remove_dirty_chars"
    assert mbpp["Mbpp/77"].entry_point == "is_Diff"  # called as `is_Diff (12345)`
    assert all(t.entry_point in t.test_list[0] for t in mbpp.values())
    assert all(f"def {t.entry_point}" in t.canonical_solution for t in mbpp.values())
    assert sum(1 for t in mbpp.values() if t.test_imports == ("import math",)) == 13


def test_unknown_benchmark_is_an_input_error():
    with pytest.raises(BenchInputError, match="unknown benchmark 'apps'.*humaneval, mbpp"):
        load_tasks("apps")


def test_canonical_completions_are_the_dataset_solutions(humaneval, mbpp):
    assert canonical_completions("humaneval")["HumanEval/0"] == humaneval["HumanEval/0"].canonical_solution
    assert canonical_completions("mbpp")["Mbpp/11"].startswith("def remove_Occ(s,ch):")


# -- the text agents may see ----------------------------------------------------------


def test_agent_prompt_for_humaneval_is_the_prompt_without_the_hidden_tests(humaneval):
    task = humaneval["HumanEval/0"]
    assert agent_prompt(task) == task.prompt
    assert "check(" not in agent_prompt(task, show_tests="all")


def test_agent_prompt_for_mbpp_shows_only_the_first_assert_by_default(mbpp):
    task = mbpp["Mbpp/11"]
    text = agent_prompt(task)
    assert text.startswith(task.text)
    assert "Your code should pass this test:" in text
    assert task.test_list[0] in text
    assert task.test_list[1] not in text and task.test_list[2] not in text
    everything = agent_prompt(task, show_tests="all")
    assert "Your code should pass these tests:" in everything
    assert all(test in everything for test in task.test_list)


def test_agent_prompt_keeps_the_imports_the_asserts_need(mbpp):
    task = next(t for t in mbpp.values() if t.test_imports)
    assert "import math\nassert " in agent_prompt(task)


def test_agent_prompt_refuses_an_unknown_test_visibility(mbpp):
    with pytest.raises(BenchInputError, match="--show-tests must be one of first, all"):
        agent_prompt(mbpp["Mbpp/11"], show_tests="some")


# -- completions files ----------------------------------------------------------------


def test_read_completions_normalises_task_ids(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"task_id": "HumanEval/3", "completion": "    return 1\n"}) + "\n\n"
        + json.dumps({"task_id": 11, "completion": "a"}) + "\n"
        + json.dumps({"task_id": "Mbpp/12", "completion": "b"}) + "\n"
        + json.dumps({"task_id": "14", "completion": "c", "extra": 1}) + "\n"
        + json.dumps({"task_id": "mbpp/16", "completion": "d"}) + "\n"
    )
    assert read_completions(path) == {
        "HumanEval/3": "    return 1\n", "Mbpp/11": "a", "Mbpp/12": "b", "Mbpp/14": "c", "Mbpp/16": "d",
    }


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"task_id": "HumanEval/1", "completion": ', "not valid JSON"),
        ('["HumanEval/1", "x"]', "expected an object"),
        ('{"task_id": "HumanEval/1"}', "missing 'completion'"),
        ('{"completion": "x"}', "missing 'task_id'"),
        ('{"task_id": "HumanEval/1", "completion": 3}', "'completion' must be a string"),
        ('{"task_id": "APPS/1", "completion": "x"}', "unrecognised task_id 'APPS/1'"),
        ('{"task_id": 1.5, "completion": "x"}', "task_id must be a string or an integer"),
        ('{"task_id": "HumanEval/0", "completion": "again"}', "HumanEval/0 already has a completion on line 1"),
    ],
)
def test_a_bad_completions_line_is_named_by_its_number(tmp_path, bad_line, message):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "x"}) + "\n\n" + bad_line + "\n")
    with pytest.raises(BenchInputError) as error:
        read_completions(path)
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)


def test_a_missing_completions_file_is_an_input_error(tmp_path):
    with pytest.raises(BenchInputError, match="cannot read completions file"):
        read_completions(tmp_path / "absent.jsonl")


def test_normalise_task_id_spellings():
    assert normalise_task_id("humaneval/007") == "HumanEval/7"
    assert normalise_task_id(" MBPP/11 ") == "Mbpp/11"
    with pytest.raises(ValueError):
        normalise_task_id(True)


# -- programs -------------------------------------------------------------------------


def test_humaneval_program_is_prompt_completion_test_and_check(humaneval):
    task = humaneval["HumanEval/0"]
    program = build_program(task, task.canonical_solution)
    assert program.startswith(task.prompt + task.canonical_solution + "\n" + task.test + "\ncheck(has_close_elements)\n")
    assert program.rstrip().endswith(f"print({SENTINEL!r})")


def test_mbpp_program_is_imports_completion_and_asserts(mbpp):
    task = next(t for t in mbpp.values() if t.test_imports)
    program = build_program(task, task.canonical_solution)
    assert program.startswith("import math\n" + task.canonical_solution + "\n" + "\n".join(task.test_list) + "\n")


@pytest.mark.parametrize(
    ("completion", "whole"),
    [
        ("    return True\n", False),
        ("def has_close_elements(numbers, threshold):\n    return True\n", True),
        ("from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
         "    return True\n", True),
        ("# solution\nimport itertools\ndef has_close_elements(numbers, threshold):\n    return True\n", True),
        ("def helper(x):\n    return x\n", False),  # a def, but not of the entry point
        ("    def inner():\n        pass\n    return True\n", False),
    ],
)
def test_whole_function_detection(completion, whole):
    assert is_whole_function(completion, "has_close_elements") is whole


def test_a_whole_function_replaces_the_prompt_but_keeps_its_imports_and_helpers(humaneval):
    task = humaneval["HumanEval/38"]
    program = build_program(task, "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n")
    assert program.count("def decode_cyclic(") == 1
    assert program.count("def encode_cyclic(") == 1
    assert task.prompt.split("def decode_cyclic")[0] in program
    completion = "from typing import List\ndef has_close_elements(n, t):\n    return 1\n"
    whole = build_program(humaneval["HumanEval/0"], completion)
    assert whole.count("def has_close_elements(") == 1
    assert whole.startswith("from typing import List\n\n\nfrom typing import List\ndef has_close_elements(n, t):")


# -- scoring in the sandbox -----------------------------------------------------------


def test_canonical_humaneval_scores_164_of_164(sandbox):
    tasks = load_tasks("humaneval")
    scores = score_completions(sandbox, IMAGE, tasks, canonical_completions("humaneval"))
    assert [s.result for s in scores if not s.passed] == []
    assert len(scores) == 164 and [s.task_id for s in scores] == [t.task_id for t in tasks]


def test_canonical_mbpp_scores_257_of_257(sandbox):
    tasks = load_tasks("mbpp")
    scores = score_completions(sandbox, IMAGE, tasks, canonical_completions("mbpp"))
    assert [s.result for s in scores if not s.passed] == []
    assert len(scores) == 257


def test_wrong_crashing_and_missing_completions_fail_with_one_line_reasons(sandbox, humaneval, mbpp):
    tasks = [humaneval[f"HumanEval/{n}"] for n in range(6)] + [mbpp["Mbpp/11"]]
    completions = {
        "HumanEval/0": "    return False\n",
        "HumanEval/1": "    raise ValueError('boom')\n",
        "HumanEval/2": "    return (\n",
        "HumanEval/3": "    import sys\n    sys.exit(0)\n",
        "HumanEval/4": humaneval["HumanEval/4"].canonical_solution,
        "Mbpp/11": "def remove_Occ(s, ch):\n    return s\n",
    }
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions, timeout_s=5))
    assert scores["HumanEval/0"].result == (
        "failed: AssertionError: assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True"
    )
    assert scores["HumanEval/1"].result == "failed: ValueError: boom"
    assert scores["HumanEval/2"].result.startswith("failed: SyntaxError:")
    # Leaving before the tests ran is not a pass, even with exit status 0.
    assert scores["HumanEval/3"].result == "failed: the program exited before its tests finished"
    assert scores["HumanEval/4"].result == "passed" and scores["HumanEval/4"].passed
    assert scores["HumanEval/5"].result == "failed: no completion"
    assert scores["Mbpp/11"].result == 'failed: AssertionError: assert remove_Occ("hello","l") == "heo"'
    assert [s.passed for s in scores.values()].count(True) == 1


def test_an_infinite_loop_times_out_without_sinking_its_batch(sandbox, humaneval):
    # Task 5 leaves children behind that would kill every process in the container a second later,
    # while task 2 hangs: only ending each task's whole process group keeps the batch alive.
    tasks = [humaneval[f"HumanEval/{n}"] for n in (5, 2, 0, 1, 3, 4, 6, 7)]
    completions = {task.task_id: task.canonical_solution for task in tasks}
    completions["HumanEval/2"] = "    while True:\n        pass\n"
    completions["HumanEval/5"] = (
        "    import subprocess, sys\n"
        "    subprocess.Popen([sys.executable, '-c', 'import os, time; time.sleep(1); os.kill(-1, 9)'])\n"
        + humaneval["HumanEval/5"].canonical_solution
    )
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions, timeout_s=2, parallel=1))
    timed_out = scores.pop("HumanEval/2")
    assert timed_out.result == "timed out" and not timed_out.passed
    assert {s.result for s in scores.values()} == {"passed"}


def test_a_task_that_kills_the_runner_is_charged_and_the_rest_still_run(sandbox, humaneval):
    tasks = [humaneval[f"HumanEval/{n}"] for n in range(6)]
    completions = {task.task_id: task.canonical_solution for task in tasks}
    completions["HumanEval/2"] = "    import os\n    os.kill(-1, 9)\n"
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions, parallel=1))
    assert scores.pop("HumanEval/2").result.startswith("failed: the sandbox runner died while this task ran")
    assert {task_id: s.result for task_id, s in scores.items()} == {task_id: "passed" for task_id in scores}


def test_resource_abuse_fails_its_own_task_only(sandbox, humaneval):
    tasks = [humaneval[f"HumanEval/{n}"] for n in range(5)]
    completions = {task.task_id: task.canonical_solution for task in tasks}
    completions["HumanEval/1"] = "    while True:\n        print('x' * 10000)\n"
    completions["HumanEval/2"] = "    return bytearray(2 * 1024**3)\n"
    completions["HumanEval/3"] = "    import os\n    while True:\n        os.fork()\n"
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions, timeout_s=5, parallel=1))
    assert scores["HumanEval/1"].result == "failed: OSError: [Errno 27] File too large"
    assert scores["HumanEval/2"].result in ("failed: killed by SIGKILL (out of memory?)", "failed: MemoryError")
    assert scores["HumanEval/3"].result == "failed: BlockingIOError: [Errno 11] Resource temporarily unavailable"
    assert scores["HumanEval/0"].passed and scores["HumanEval/4"].passed


def test_tasks_are_spread_over_parallel_containers(sandbox, humaneval):
    tasks = [humaneval[f"HumanEval/{n}"] for n in range(4)]
    completions = {t.task_id: "import time\ntime.sleep(2)\n" + t.prompt + t.canonical_solution for t in tasks}
    counting = ConcurrentContainers(sandbox)
    scores = score_completions(counting, IMAGE, tasks, completions, parallel=4)
    assert all(s.passed for s in scores)
    assert counting.containers == 4 and counting.peak >= 2


class ConcurrentContainers:
    """A sandbox that counts the containers it starts and how many ran at the same time."""

    def __init__(self, inner):
        self.inner, self.limits = inner, inner.limits
        self.containers, self.running, self.peak = 0, 0, 0
        self.lock = threading.Lock()

    def run_script(self, *args, **kwargs):
        with self.lock:
            self.containers += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return self.inner.run_script(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def host_server():
    """A real HTTP server on the host's 127.0.0.1, for the sandbox to (fail to) reach."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"reachable"})

    with ThreadedServer(app, name="host") as server:
        yield f"{server.url}/"


def test_a_completion_cannot_reach_the_network_or_the_host_environment(sandbox, humaneval, host_server, tmp_path,
                                                                       monkeypatch):
    secret_file = tmp_path / "host-secret.txt"
    secret_file.write_text("canary")
    monkeypatch.setenv("AGENTCODER_BENCH_CANARY", "canary")
    body = humaneval["HumanEval/0"].canonical_solution
    completions = {
        "HumanEval/0": f"    import urllib.request\n    urllib.request.urlopen({host_server!r}, timeout=3).read()\n" + body,
        "HumanEval/1": "    import os\n    assert os.environ['AGENTCODER_BENCH_CANARY'] == 'canary'\n"
        + humaneval["HumanEval/1"].canonical_solution,
        "HumanEval/2": f"    assert open({str(secret_file)!r}).read() == 'canary'\n"
        + humaneval["HumanEval/2"].canonical_solution,
    }
    tasks = [humaneval[task_id] for task_id in completions]
    # On the host each of these programs passes: the checks below are not vacuous.
    for task in tasks:
        program = tmp_path / "program.py"
        program.write_text(build_program(task, completions[task.task_id]))
        host = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=30,
                              env=os.environ.copy())
        assert host.returncode == 0 and host.stdout.strip().endswith(SENTINEL), host.stderr
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions))
    assert not any(s.passed for s in scores.values())
    assert "URLError" in scores["HumanEval/0"].result
    assert scores["HumanEval/1"].result == "failed: KeyError: 'AGENTCODER_BENCH_CANARY'"
    assert scores["HumanEval/2"].result.startswith("failed: FileNotFoundError:")


def test_whole_function_completions_pass_in_the_sandbox(sandbox, humaneval):
    ids = ["HumanEval/0", "HumanEval/10", "HumanEval/32", "HumanEval/38", "HumanEval/50"]
    completions = {task_id: humaneval[task_id].prompt + humaneval[task_id].canonical_solution for task_id in ids}
    completions["HumanEval/38"] = "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n"
    completions["HumanEval/2"] = "import math\n\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n"
    completions["HumanEval/3"] = "def below_zero(operations):\n    return False\n"
    tasks = [humaneval[task_id] for task_id in completions]
    scores = by_id(score_completions(sandbox, IMAGE, tasks, completions))
    assert scores.pop("HumanEval/3").result.startswith("failed: AssertionError: assert candidate(")
    assert {task_id: s.result for task_id, s in scores.items()} == {task_id: "passed" for task_id in scores}


# -- the command's entry point --------------------------------------------------------


def test_run_score_as_json_on_the_first_tasks(sandbox, tmp_path):
    solutions = canonical_completions("mbpp")
    records = [{"task_id": int(task_id.split("/")[1]), "completion": code} for task_id, code in solutions.items()]
    records[1]["completion"] = "def sort_matrix(M):\n    return M\n"
    path = write_jsonl(tmp_path / "mbpp.jsonl", records)
    report = run_score("mbpp", path, 4, True, sandbox, IMAGE)
    assert {key: report[key] for key in ("benchmark", "pass_at_1", "passed", "total")} == {
        "benchmark": "mbpp", "pass_at_1": 0.75, "passed": 3, "total": 4,
    }
    assert [(t["task_id"], t["passed"]) for t in report["tasks"]] == [
        ("Mbpp/11", True), ("Mbpp/12", False), ("Mbpp/14", True), ("Mbpp/16", True),
    ]
    assert report["tasks"][1]["result"].startswith("failed: AssertionError: assert sort_matrix(")
    assert report["duration_s"] > 0
    json.dumps(report)


def test_run_score_as_text(sandbox, tmp_path):
    path = write_jsonl(tmp_path / "he.jsonl", [{"task_id": "HumanEval/1", "completion": "    return []\n"}])
    text = run_score("humaneval", path, 2, False, sandbox, IMAGE)
    lines = text.splitlines()
    assert lines[0].startswith("humaneval: pass@1 0.0% (0/2 passed) in ")
    assert lines[1:] == [
        "not passed:",
        "  HumanEval/0: failed: no completion",
        "  HumanEval/1: failed: AssertionError: assert candidate('(()()) ((())) () ((())()())') == [",
    ]


@pytest.mark.parametrize(
    ("name", "records", "limit", "message"),
    [
        ("humaneval", [{"task_id": 11, "completion": "x"}], None,
         "1 task id(s) are not in humaneval, for example Mbpp/11"),
        ("humaneval", ["not an object"], None, ":1: expected an object"),
        ("humaneval", [], 0, "--limit must be at least 1, not 0"),
        ("apps", [], None, "unknown benchmark 'apps'"),
    ],
)
def test_run_score_input_errors_raise_one_line(sandbox, tmp_path, name, records, limit, message):
    path = write_jsonl(tmp_path / "c.jsonl", records)
    with pytest.raises(BenchInputError) as info:
        run_score(name, path, limit, True, sandbox, IMAGE)
    text = str(info.value)
    assert "\n" not in text and message in text

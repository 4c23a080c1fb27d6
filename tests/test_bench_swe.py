"""`agentcoder bench swe`: SWE-bench's formats (pure), and the whole run as a user starts it — a subprocess,
scripted models over real HTTP, real git mirrors of small synthetic repositories, the real Docker sandbox.

The synthetic repositories stand in for the fetched ones (CI cannot fetch GitHub): each instance has a gold
patch, a test patch and FAIL_TO_PASS / PASS_TO_PASS lists exactly as SWE-bench's datasets carry them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

from bot.bench.swe import (
    PREDICTION_KEYS,
    Designed,
    InstanceResult,
    Status,
    load_instances,
    parse_instances,
    patch_files,
    patch_to_edit_blocks,
    predicted_ids,
    prediction,
)
from bot.bench.swe_run import classify_designed, files_of, judge
from bot.bench.swe_session import format_session, session_report
from bot.dev.openai_server import ScriptedOpenAI
from bot.dev.swe_gold import (
    DESIGNER_MODEL,
    NONSENSE,
    PROGRAMMER_MODEL,
    absolute_imports,
    gold_answers,
    gold_model,
    only_tests,
)
from bot.loop.agents import extract_python_module
from bot.loop.edits import apply_edits, parse_edit_blocks
from bot.sandbox.results import CollectionError, RunResult, TestOutcome
from tests.cli_runs import HEAVY_MODULES, run_process
from tests.conftest import free_port, make_repo

CALC = {
    "calc/__init__.py": '''\
        """Small arithmetic helpers."""


        def add(a, b):
            """The sum of a and b."""
            return a + b


        def mean(values):
            """The arithmetic mean of values."""
            return sum(values) / len(values)
        ''',
    "tests/test_calc.py": '''\
        from calc import add, mean


        def test_add():
            assert add(2, 3) == 5


        def test_mean():
            assert mean([1, 2, 3]) == 2
        ''',
}
FIXED_MEAN = "    return sum(values) / len(values) if values else 0.0\n"
NEW_TEST = "\n\ndef test_mean_of_nothing():\n    assert mean([]) == 0.0\n"
ISSUE = "mean() of an empty list raises ZeroDivisionError\n\n`calc.mean([])` should be 0.0, not an exception.\n"


# -- the synthetic repositories and their instances ----------------------------------------------------------


def _diff(repo: Path, change: dict[str, str]) -> str:
    """The unified diff of writing `change` over the checkout (the checkout is put back afterwards)."""
    handle = git.Repo(repo)
    for relative, text in change.items():
        (repo / relative).write_text(text)
    patch = handle.git.diff() + "\n"
    handle.git.checkout("--", ".")
    return patch


def build_mirrors(root: Path) -> tuple[Path, list[dict]]:
    """Mirrors DIR/acme__calc and DIR/acme__broken, and the instances against them (plus bad ones)."""
    repos = root / "mirrors"
    calc = make_repo(repos / "acme__calc", CALC)
    base = git.Repo(calc).head.commit.hexsha
    source = (calc / "calc/__init__.py").read_text()
    gold = _diff(calc, {"calc/__init__.py": source.replace("    return sum(values) / len(values)\n", FIXED_MEAN)})
    test_patch = _diff(calc, {"tests/test_calc.py": (calc / "tests/test_calc.py").read_text() + NEW_TEST})
    good = {
        "instance_id": "acme__calc-1", "repo": "acme/calc", "base_commit": base, "problem_statement": ISSUE,
        "patch": gold, "test_patch": test_patch,
        "FAIL_TO_PASS": json.dumps(["tests/test_calc.py::test_mean_of_nothing"]),
        "PASS_TO_PASS": json.dumps(["tests/test_calc.py::test_add", "tests/test_calc.py::test_mean"]),
    }
    missing = {**good, "instance_id": "acme__calc-2", "base_commit": "0123456789abcdef0123456789abcdef01234567",
               "problem_statement": "add() is slow\n\nIt could be faster."}
    stale = test_patch.replace("def test_mean():", "def test_median():")
    unapplied = {**good, "instance_id": "acme__calc-3", "test_patch": stale,
                 "problem_statement": "mean() breaks on nothing\n\n`calc.mean([])` raises; it should be 0.0.\n"}
    broken = make_repo(repos / "acme__broken", {**CALC, ".agentcoder.yml": "setup:\n  - python -c 'raise SystemExit(3)'\n"})
    uninstallable = {**good, "instance_id": "acme__broken-1", "repo": "acme/broken",
                     "base_commit": git.Repo(broken).head.commit.hexsha,
                     "problem_statement": "mean() of nothing fails in broken\n\nSame as calc.\n"}
    return repos, [good, missing, unapplied, uninstallable]


def write_instances(path: Path, rows: list[dict], malformed: str | None = None) -> Path:
    lines = [json.dumps(row) for row in rows]
    if malformed is not None:
        lines.insert(1, malformed)
    path.write_text("\n".join(lines) + "\n")
    return path


def bench(server: ScriptedOpenAI, *args: object, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "scripted",
           "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER_MODEL, "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER_MODEL,
           "AGENTCODER_LLM_MAX_RETRIES": "0", "AGENTCODER_MAX_ITERATIONS": "2",
           "AGENTCODER_MODEL_PRICES": json.dumps({PROGRAMMER_MODEL: {"input": 1.0, "output": 2.0}}),
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "bot.cli", "bench", "swe", *map(str, args)], check=False,
                          capture_output=True, text=True, env=env, timeout=900)


# -- end to end (Docker) ---------------------------------------------------------------------------------------


@pytest.mark.docker
def test_gold_model_resolves_and_bad_instances_are_reported_not_fatal(sandbox, tmp_path):
    repos, rows = build_mirrors(tmp_path)
    instances = write_instances(tmp_path / "instances.jsonl", rows, malformed="{this is not json")
    predictions = tmp_path / "preds.jsonl"
    answers = gold_answers(load_instances(instances).instances, repos)
    with ScriptedOpenAI(default=gold_model(answers)) as server:
        done = bench(server, "--instances", instances, "--repos", repos, "--predictions", predictions, "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
        by_id = {item["instance_id"]: item for item in report["instances"]}

        good = by_id["acme__calc-1"]
        assert (good["status"], good["resolved"], good["stop"], good["iterations"]) == ("completed", True, "resolved", 1)
        assert good["fail_to_pass"] == {"tests/test_calc.py::test_mean_of_nothing": "passed"}
        assert good["pass_to_pass_failed"] == []
        assert good["designed"]["fail_to_pass"] == 1 and good["designed"]["wrong"] == 0
        assert good["files_changed"] == ["calc/__init__.py"]
        assert good["tokens"]["programmer"] > 0 and good["tokens"]["test_designer"] > 0
        assert good["cost_usd"]["programmer"] > 0 and good["cost_usd"]["test_designer"] is None
        assert good["sandbox_s"] > 0 and good["wall_s"] >= good["loop_s"] > 0
        assert by_id["acme__calc-2"]["status"] == "skipped"
        assert "0123456789ab" in by_id["acme__calc-2"]["reason"] and by_id["acme__calc-2"]["stop"] is None
        assert (by_id["acme__calc-3"]["status"], by_id["acme__calc-3"]["resolved"]) == ("error", False)
        assert "test_patch does not apply" in by_id["acme__calc-3"]["reason"]
        assert by_id["acme__broken-1"]["status"] == "setup_failed"
        assert by_id["acme__broken-1"]["stop"] == "setup_failed" and by_id["acme__broken-1"]["resolved"] is None

        total = report["total"]
        assert (total["instances"], total["resolved"], total["skipped"], total["errors"], total["setup_failed"],
                total["malformed_lines"]) == (4, 1, 1, 1, 1, 1)
        assert report["malformed"] == [("line 2: Expecting property name enclosed in double quotes: line 1 column 2"
                                        " (char 1)")]
        assert "line 2" in done.stderr and "(skipped)" in done.stderr
        progress = [line for line in done.stderr.splitlines() if line.startswith("[agentcoder] [")]
        assert [line.split()[2] for line in progress] == ["acme__calc-1:", "acme__calc-2:", "acme__calc-3:",
                                                          "acme__broken-1:"]

        # The predictions file is what SWE-bench's harness reads: exactly its keys, the non-test change only.
        lines = [json.loads(line) for line in predictions.read_text().splitlines()]
        assert [line["instance_id"] for line in lines] == ["acme__calc-1", "acme__calc-3", "acme__broken-1"]
        for line in lines:
            assert set(line) == set(PREDICTION_KEYS) and all(isinstance(value, str) for value in line.values())
            assert line["model_name_or_path"] == f"{PROGRAMMER_MODEL}+{DESIGNER_MODEL}"
        assert patch_files(lines[0]["model_patch"]) == ["calc/__init__.py"]
        check = git.Repo.clone_from(str(repos / "acme__calc"), tmp_path / "check")
        (tmp_path / "model.diff").write_text(lines[0]["model_patch"])
        check.git.apply(str(tmp_path / "model.diff"))
        assert FIXED_MEAN in (tmp_path / "check/calc/__init__.py").read_text()
        assert lines[2]["model_patch"] == ""

        # Resumable: a second run skips every predicted instance and asks the model nothing.
        asked = len(server.requests)
        again = bench(server, "--instances", instances, "--repos", repos, "--predictions", predictions, "--json")
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(server.requests) == asked
        resumed = json.loads(again.stdout)
        assert resumed["total"]["resumed"] == 3 and resumed["total"]["resolved"] == 1
        assert {item["instance_id"]: item["resumed"] for item in resumed["instances"]} == {
            "acme__calc-1": True, "acme__calc-2": False, "acme__calc-3": True, "acme__broken-1": True}
        assert len(predictions.read_text().splitlines()) == 3
        assert "already in" in again.stderr


@pytest.mark.docker
def test_nonsense_model_resolves_nothing_and_exits_cleanly(sandbox, tmp_path):
    repos, rows = build_mirrors(tmp_path)
    instances = write_instances(tmp_path / "instances.jsonl", rows[:1])
    with ScriptedOpenAI(default=lambda _request: NONSENSE) as server:
        done = bench(server, "--instances", instances, "--repos", repos, "--predictions", tmp_path / "p.jsonl")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resolved 0 of 1" in done.stdout and "Traceback" not in done.stderr
    assert "acme__calc-1: completed (loop: not_resolved)" in done.stdout
    assert json.loads((tmp_path / "p.jsonl").read_text())["model_patch"] == ""


def test_bad_arguments_exit_2_naming_what_to_fix(cli, tmp_path):
    # No model server answers: bad arguments are refused before any model is needed.
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "OPENAI_API_KEY": "scripted"}
    missing = cli("bench", "swe", "--instances", tmp_path / "nope.jsonl", env=env)
    (tmp_path / "junk.jsonl").write_text("{}\nnot json\n")
    junk = cli("bench", "swe", "--instances", tmp_path / "junk.jsonl", env=env)
    no_repos = cli("bench", "swe", "--instances", tmp_path / "junk.jsonl", "--repos", tmp_path / "absent", env=env)
    assert missing.returncode == 2 and "--instances" in missing.stderr and str(tmp_path / "nope.jsonl") in missing.stderr
    assert junk.returncode == 2 and "holds no valid instance" in junk.stderr
    assert no_repos.returncode == 2 and "--repos" in no_repos.stderr
    assert "Traceback" not in missing.stderr + junk.stderr + no_repos.stderr


def test_as_a_process_bad_arguments_are_refused_in_one_line_before_the_loop_is_imported(tmp_path):
    done, imported = run_process("bench", "swe", "--instances", tmp_path / "nope.jsonl",
                                 env={**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"agentcoder: cannot read --instances {tmp_path / 'nope.jsonl'}: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert imported.isdisjoint(HEAVY_MODULES), sorted(imported & HEAVY_MODULES)


@pytest.mark.docker
def test_unreachable_model_is_a_usage_error(sandbox, tmp_path):
    repos, rows = build_mirrors(tmp_path)
    instances = write_instances(tmp_path / "instances.jsonl", rows[:1])
    with ScriptedOpenAI() as server:
        url = server.base_url
    env = {"OPENAI_BASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "bench", "swe", "--instances", str(instances), "--repos",
                           str(repos), "--predictions", str(tmp_path / "p.jsonl")], check=False, capture_output=True, text=True,
                          env={**os.environ, **env, "OPENAI_API_KEY": "x", "AGENTCODER_LLM_MAX_RETRIES": "0"},
                          timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].startswith("agentcoder: the model did not answer: check OPENAI_BASE_URL")
    assert not (tmp_path / "p.jsonl").exists()


# -- formats (pure) --------------------------------------------------------------------------------------------


def _row(**changes) -> str:
    row = {"instance_id": "o__r-1", "repo": "o/r", "base_commit": "a" * 40, "problem_statement": "Title\nbody",
           "FAIL_TO_PASS": '["t.py::test_a"]', "PASS_TO_PASS": ["t.py::test_b"]}
    return json.dumps({**row, **changes})


def test_instances_parse_as_swe_bench_publishes_them_and_bad_lines_are_counted():
    loaded = parse_instances([
        _row(), "", "[1, 2]", _row(instance_id="o__r-2", repo="not a repo"), _row(instance_id="o__r-3", base_commit="HEAD"),
        _row(instance_id="o__r-4", FAIL_TO_PASS="[oops"), _row(), json.dumps({"instance_id": "x"}),
        _row(instance_id="o__r-5", FAIL_TO_PASS=None, PASS_TO_PASS=""),
    ])
    assert [instance.instance_id for instance in loaded.instances] == ["o__r-1", "o__r-5"]
    first = loaded.instances[0]
    assert first.fail_to_pass == ("t.py::test_a",) and first.pass_to_pass == ("t.py::test_b",)
    assert first.mirror_name == "o__r" and not first.scorable
    assert loaded.malformed == [
        "line 3: not a JSON object", "line 4: repo 'not a repo' is not owner/name",
        "line 5: base_commit is not a commit sha", "line 6: FAIL_TO_PASS is not a JSON list",
        "line 7: instance o__r-1 repeated", "line 8: missing repo, base_commit, problem_statement",
    ]


def test_a_json_list_file_loads_like_json_lines(tmp_path):
    path = tmp_path / "lite.json"
    path.write_text(json.dumps([json.loads(_row()), json.loads(_row(instance_id="o__r-2"))]))
    assert [instance.instance_id for instance in load_instances(path).instances] == ["o__r-1", "o__r-2"]


def test_predictions_have_exactly_the_harness_keys_and_a_cut_line_is_run_again(tmp_path):
    record = prediction("o__r-1", "gpt-x", "diff --git a/x b/x\n")
    # swebench/harness/constants: KEY_INSTANCE_ID, KEY_MODEL, KEY_PREDICTION.
    assert list(record) == ["instance_id", "model_name_or_path", "model_patch"] == list(PREDICTION_KEYS)
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(record) + "\n" + '{"instance_id": "o__r-2", "model_pa')
    assert predicted_ids(path) == {"o__r-1"}
    assert predicted_ids(tmp_path / "absent.jsonl") == set()


def test_gold_patch_as_edit_blocks_gives_the_same_files_as_git_apply(tmp_path):
    repo = make_repo(tmp_path / "repo", {**CALC, "calc/notes.txt": "one\ntwo\nthree\n"})
    source = (repo / "calc/__init__.py").read_text()
    patch = _diff(repo, {"calc/__init__.py": source.replace("    return a + b\n", "    total = a + b\n    return total\n")
                         .replace("    return sum(values) / len(values)\n", FIXED_MEAN),
                         "calc/notes.txt": "one\n2\nthree\n"})
    (repo / "calc/extra.py").write_text("X = 1\n")
    patch += _new_file_diff(repo, "calc/extra.py")
    blocks = parse_edit_blocks(patch_to_edit_blocks(patch))
    assert not blocks.problems and len(blocks.blocks) == 3  # two nearby changes share one hunk
    applied = apply_edits(blocks.blocks, lambda path: (repo / path).read_text() if (repo / path).exists() else None,
                          lambda _path: None)
    assert not applied.problems
    (repo / "p.diff").write_text(patch)
    git.Repo(repo).git.apply(str(repo / "p.diff"))
    for path, text in applied.files.items():
        assert (repo / path).read_text() == text, path
    assert sorted(applied.files) == ["calc/__init__.py", "calc/extra.py", "calc/notes.txt"]


def _new_file_diff(repo: Path, relative: str) -> str:
    handle = git.Repo(repo)
    handle.git.add("-N", relative)
    text = handle.git.diff("--", relative) + "\n"
    handle.git.reset("-q", "--", relative)
    (repo / relative).unlink()
    return text


def _run(*outcomes: tuple[str, str], errors: tuple[str, ...] = ()) -> RunResult:
    return RunResult(tests=[TestOutcome(test_id, outcome) for test_id, outcome in outcomes],
                     collection_errors=[CollectionError(error, "boom") for error in errors], duration_s=1.0)


def test_resolution_follows_swe_bench_rule():
    instance = parse_instances([_row(PASS_TO_PASS='["t.py::test_b", "t.py::test_c"]')]).instances[0]
    assert judge(instance, _run(("t.py::test_a", "passed"), ("t.py::test_b", "passed"), ("t.py::test_c", "skipped")))[0]
    assert judge(instance, _run(("t.py::test_a", "failed"), ("t.py::test_b", "passed"), ("t.py::test_c", "passed"))) == (
        False, {"t.py::test_a": "failed"}, [])
    resolved, _, broken = judge(instance, _run(("t.py::test_a", "passed"), ("t.py::test_b", "error")))
    assert not resolved and broken == ["t.py::test_b", "t.py::test_c"]  # a missing PASS_TO_PASS test counts as failed
    assert judge(instance, _run(errors=("t.py",)))[1] == {"t.py::test_a": "missing"}
    assert files_of(["t.py::test_a", "t.py::test_b[x-y]", "u/v.py::C::test"]) == ["t.py", "u/v.py"]


def test_generated_tests_are_judged_against_base_and_gold():
    before = _run(("g.py::test_repro", "failed"), ("g.py::test_guard", "passed"), ("g.py::test_bad", "passed"))
    after = _run(("g.py::test_repro", "passed"), ("g.py::test_guard", "passed"), ("g.py::test_bad", "failed"))
    assert classify_designed(before, after, 3) == Designed(fail_to_pass=1, regression=1, wrong=1)
    assert classify_designed(_run(errors=("g.py",)), _run(("g.py::test_new", "passed")), 1) == Designed(fail_to_pass=1)
    assert classify_designed(before, _run(errors=("g.py",)), 3) == Designed(wrong=3)


def test_report_totals_and_text():
    done = InstanceResult("a", Status.COMPLETED, resolved=True, stop="resolved", iterations=1,
                          tokens={"programmer": 10, "test_designer": 5}, cost_usd={"programmer": 0.5, "test_designer": 0.25},
                          wall_s=3.0, loop_s=2.5, sandbox_s=2.0, designed=Designed(fail_to_pass=2, regression=1))
    failed = InstanceResult("b", Status.COMPLETED, resolved=False, stop="not_resolved", iterations=5,
                            tokens={"programmer": 20, "test_designer": 5}, cost_usd={"programmer": 1.0, "test_designer": 0.25},
                            wall_s=9.0, loop_s=8.0, sandbox_s=6.0, designed=Designed(wrong=2))
    skipped = InstanceResult("c", Status.SKIPPED, reason="no mirror")
    report = session_report("m", [done, failed, skipped], ["line 9: not a JSON object"], 12.5)
    total = report["total"]
    assert (total["resolved"], total["scored"], total["resolved_rate"], total["fail_to_pass_rate"]) == (1, 2, 0.3333, 0.5)
    assert total["designed_tests"] == {"fail_to_pass": 2, "regression": 1, "wrong": 2}
    assert total["iterations"] == {"1": 1, "5": 1} and total["stops"] == {"resolved": 1, "not_resolved": 1}
    assert total["tokens"] == {"programmer": 30, "test_designer": 10}
    assert total["cost_usd"] == {"programmer": 1.5, "test_designer": 0.5}
    assert (total["wall_s"], total["loop_s"], total["sandbox_s"], total["malformed_lines"]) == (12.0, 10.5, 8.0, 1)
    text = format_session(report)
    assert "resolved 1 of 3 (33.3%)" in text and "fail-to-pass rate 50.0% of 2 instance(s)" in text
    assert "  b: completed (loop: not_resolved)" in text and "  c: skipped: no mirror (loop: None)" in text
    assert InstanceResult.from_json(json.loads(json.dumps(done.to_json()))) == done


def test_gold_designer_module_keeps_the_real_tests_and_their_support_only():
    source = ('import pytest\n\nHELPER = 1\n\n\n@pytest.fixture\ndef thing():\n    return HELPER\n\n\n'
              'def test_old():\n    assert True\n\n\nclass OldTests(unittest.TestCase):\n    def test_x(self):\n'
              '        pass\n\n\n@pytest.mark.parametrize("n", [1])\ndef test_new(thing, n):\n    assert thing == n')
    module = only_tests(source, {"test_new"})
    assert "def test_old" not in module and "class OldTests" not in module
    assert module.startswith("import pytest\n\nHELPER = 1\n") and "@pytest.fixture" in module
    assert module.endswith('@pytest.mark.parametrize("n", [1])\ndef test_new(thing, n):\n    assert thing == n\n')
    assert extract_python_module(f"```python\n{module}```\n") == module
    relative = "from . import helpers\nfrom .data.files import load\n    from ..top import x\n"
    assert absolute_imports(relative, "pkg/tests/test_a.py") == (
        "from pkg.tests import helpers\nfrom pkg.tests.data.files import load\n    from pkg.top import x\n")

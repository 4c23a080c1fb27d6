"""The executor against the real Docker engine: outcomes, limits, isolation, caching."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from bot.repo_config import load_repo_config
from bot.sandbox.executor import SetupFailed
from bot.sandbox.results import RunProblem, RunResult, parse_report
from tests.conftest import make_repo
from tests.samples import CALC

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

def run(sandbox, repo: Path, **kwargs) -> RunResult:
    return sandbox.run_tests(repo, load_repo_config(repo), **kwargs)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_per_test_outcomes_and_failure_text(sandbox, tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    result = run(sandbox, repo)
    assert result.outcomes() == {
        "tests/test_calc.py::test_add": "failed",
        "tests/test_calc.py::test_zero": "passed",
        "tests/test_calc.py::test_skipped": "skipped",
    }
    failed = next(test for test in result.tests if test.outcome == "failed")
    assert "assert -1 == 3" in failed.message
    assert not result.ok and result.problem is None


def test_extra_files_run_with_the_suite_and_never_touch_the_host(sandbox, tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    before = tree_digest(repo)
    extra = {"tests/agentcoder/test_issue_1.py": "from calc import add\n\ndef test_new():\n    assert add(2, 2) == 4\n"}
    result = run(sandbox, repo, extra_files=extra)
    assert result.outcomes()["tests/agentcoder/test_issue_1.py::test_new"] == "failed"
    assert tree_digest(repo) == before
    assert not (repo / "tests" / "agentcoder").exists()


def test_selection_runs_only_the_named_tests(sandbox, tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    result = run(sandbox, repo, selection=["tests/test_calc.py::test_zero"])
    assert result.outcomes() == {"tests/test_calc.py::test_zero": "passed"}
    assert result.ok


def test_no_tests_collected(sandbox, tmp_path):
    repo = make_repo(tmp_path / "empty", {"lib.py": "X = 1\n"})
    result = run(sandbox, repo)
    assert result.tests == [] and result.problem is RunProblem.NO_TESTS
    assert not result.ok


def test_collection_errors_are_reported_not_lost(sandbox, tmp_path):
    repo = make_repo(tmp_path / "broken", {"tests/test_broken.py": "import not_a_module_anywhere\n\ndef test_x():\n    pass\n"})
    result = run(sandbox, repo)
    assert [error.id for error in result.collection_errors] == ["tests/test_broken.py"]
    assert "not_a_module_anywhere" in result.collection_errors[0].message
    assert result.to_json()["errors"] == 1


def test_setup_failure_gives_the_log_tail(sandbox, tmp_path):
    repo = make_repo(tmp_path / "needs", {
        "requirements.txt": "surely-not-a-real-package-agentcoder==9.9\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    with pytest.raises(SetupFailed) as info:
        run(sandbox, repo)
    assert "surely-not-a-real-package-agentcoder" in info.value.log_tail
    assert "Traceback" not in info.value.log_tail.splitlines()[-1]


def test_package_is_installed_and_environment_image_is_reused(sandbox, tmp_path):
    repo = make_repo(tmp_path / "pkg", {
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "sample-pkg"
            version = "0.1"
        """,
        "src/sample_pkg/__init__.py": "def answer():\n    return 42\n",
        "tests/test_pkg.py": "from sample_pkg import answer\n\ndef test_answer():\n    assert answer() == 42\n",
    })
    config = load_repo_config(repo)
    image = sandbox.environment_image(repo, config)
    created = sandbox.client.images.get(image).attrs["Created"]
    result = sandbox.run_tests(repo, config)
    assert result.outcomes() == {"tests/test_pkg.py::test_answer": "passed"}, result.output
    assert sandbox.environment_image(repo, config) == image
    assert sandbox.client.images.get(image).attrs["Created"] == created
    # A source change that leaves the dependency files alone reuses the image and sees the new code.
    (repo / "src/sample_pkg/__init__.py").write_text("def answer():\n    return 41\n")
    assert sandbox.environment_image(repo, config) == image
    assert run(sandbox, repo).outcomes() == {"tests/test_pkg.py::test_answer": "failed"}


def test_a_test_that_never_ends_is_killed_at_the_timeout(sandbox, tmp_path):
    repo = make_repo(tmp_path / "hang", {
        ".agentcoder.yml": "timeout: 3\n",
        "tests/test_hang.py": "def test_first():\n    pass\n\ndef test_forever():\n    while True:\n        pass\n",
    })
    result = run(sandbox, repo)
    assert result.timed_out
    assert result.running_at_timeout == "tests/test_hang.py::test_forever"
    assert result.outcomes() == {"tests/test_hang.py::test_first": "passed"}
    assert result.problem is RunProblem.TIMEOUT and result.describe_problem().startswith("timeout")


def test_fork_bomb_is_contained(sandbox, tmp_path):
    repo = make_repo(tmp_path / "fork", {"tests/test_fork.py": """
        import os, time

        def test_forks_hit_the_pids_limit():
            children = 0
            try:
                while children < 5000:
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(60)
                        os._exit(0)
                    children += 1
            except OSError:
                pass
            assert children < 5000
    """})
    result = run(sandbox, repo)
    assert result.outcomes() == {"tests/test_fork.py::test_forks_hit_the_pids_limit": "passed"}, result.output
    assert sandbox.client.ping()


def test_unbounded_allocation_is_contained(sandbox, tmp_path):
    repo = make_repo(tmp_path / "mem", {"tests/test_mem.py": """
        def test_eat_memory():
            blocks = []
            while True:
                blocks.append(bytearray(64 * 1024 * 1024))
    """})
    result = run(sandbox, repo)
    assert not result.ok
    assert result.out_of_memory or result.outcomes().get("tests/test_mem.py::test_eat_memory") == "failed"
    assert sandbox.client.ping()
    assert run(sandbox, make_repo(tmp_path / "after", CALC)).count("passed") == 1


def test_no_network_no_host_environment_no_writes_outside_the_workspace(sandbox, tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    monkeypatch.setenv("AGENTCODER_TEST_SECRET", "hunter2-must-not-leak")
    repo = make_repo(tmp_path / "escape", {"tests/test_escape.py": f"""
        import os, socket, pytest

        def test_only_loopback_interface():
            assert sorted(os.listdir("/sys/class/net")) == ["lo"]

        def test_cannot_reach_the_host():
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", {port}), timeout=2)

        def test_host_environment_is_absent():
            assert "AGENTCODER_TEST_SECRET" not in os.environ
            assert "hunter2" not in repr(dict(os.environ))

        @pytest.mark.parametrize("path", ["/etc/agentcoder", "/opt/venv/agentcoder", "/src/agentcoder", "/out/new", "/stage/x"])
        def test_cannot_write_outside(path):
            with pytest.raises(OSError):
                open(path, "w").write("x")

        def test_can_write_in_workspace_and_tmp():
            open("/workspace/scratch", "w").write("x")
            open("/tmp/scratch", "w").write("x")

        def test_runs_as_nobody_without_capabilities():
            assert os.getuid() == 65534
            status = open("/proc/self/status").read()
            assert "CapEff:\\t0000000000000000" in status
            assert "NoNewPrivs:\\t1" in status
    """})
    before = tree_digest(repo)
    result = run(sandbox, repo)
    listener.close()
    failures = {test.id: test.message for test in result.tests if test.outcome != "passed"}
    assert failures == {} and result.count("passed") == 10, failures or result.output
    assert tree_digest(repo) == before


def test_non_utf8_and_huge_output_is_decoded_and_capped(sandbox, tmp_path):
    repo = make_repo(tmp_path / "noisy", {"tests/test_noisy.py": """
        import sys

        def test_noise():
            sys.stdout.buffer.write(b"bad bytes: \\xff\\xfe\\xfa\\n")
            sys.stdout.write("x" * 3_000_000 + "\\n")
            assert False, "\\udcff" + "y" * 100_000
    """})
    result = run(sandbox, repo, selection=["-s"])
    test = result.tests[0]
    assert test.outcome == "failed"
    assert len(test.message) < 10_000
    assert len(result.output) <= sandbox.limits.output_bytes + 200
    assert "\ufffd" in result.output or "trimmed" in result.output


def test_parse_report_keeps_the_worst_outcome_and_survives_a_cut_line():
    lines = [
        '{"kind": "start", "id": "t::a"}',
        '{"kind": "test", "id": "t::a", "when": "call", "outcome": "passed", "message": ""}',
        '{"kind": "test", "id": "t::a", "when": "teardown", "outcome": "error", "message": "boom"}',
        '{"kind": "end", "id": "t::a"}',
        '{"kind": "start", "id": "t::b"}',
        '{"kind": "test", "id": "t::b", "when": "ca',
    ]
    tests, errors, running = parse_report(lines)
    assert [(t.id, t.outcome, t.message) for t in tests] == [("t::a", "error", "boom")]
    assert errors == [] and running == "t::b"

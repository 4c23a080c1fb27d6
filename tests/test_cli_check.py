"""`agentcoder check` as a user runs it: a real subprocess, the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import make_repo
from tests.samples import CALC

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image


def agentcoder(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.docker
def test_check_json_reports_each_test_and_exits_1_on_failure(tmp_path, sandbox):
    repo = make_repo(tmp_path / "calc", CALC)
    done = agentcoder("check", str(repo), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["passed"], report["failed"], report["errors"], report["skipped"]) == (1, 1, 0, 1)
    assert {t["id"]: t["outcome"] for t in report["tests"]} == {
        "tests/test_calc.py::test_add": "failed",
        "tests/test_calc.py::test_zero": "passed",
        "tests/test_calc.py::test_skipped": "skipped",
    }
    assert isinstance(report["duration_s"], float)


@pytest.mark.docker
def test_check_readable_summary_and_exit_0_when_green(tmp_path, sandbox):
    repo = make_repo(tmp_path / "green", {"tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n"})
    done = agentcoder("check", str(repo))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok  tests/test_ok.py::test_ok" in done.stdout
    assert "1 passed, 0 failed, 0 errors, 0 skipped" in done.stdout


@pytest.mark.docker
def test_check_no_tests_collected_exits_1(tmp_path, sandbox):
    repo = make_repo(tmp_path / "none", {"README.md": "nothing here\n"})
    done = agentcoder("check", str(repo))
    assert done.returncode == 1
    assert "no tests collected" in done.stdout


@pytest.mark.docker
def test_check_setup_failure_prints_log_tail_without_traceback(tmp_path, sandbox):
    repo = make_repo(tmp_path / "bad-setup", {
        ".agentcoder.yml": "setup:\n  - echo installing things\n  - exit 3\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    done = agentcoder("check", str(repo))
    assert done.returncode == 1
    assert "setup failed" in done.stdout and "installing things" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_check_misuse_exits_2_with_one_line(tmp_path):
    done = agentcoder("check", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"agentcoder: {tmp_path / 'missing'} is not a directory"


def test_check_without_docker_daemon_says_what_to_do(tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    done = agentcoder("check", str(repo), env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert done.returncode == 2
    assert "no Docker daemon answers" in done.stderr and "dockerd" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_bad_repo_config_exits_2(tmp_path):
    repo = make_repo(tmp_path / "cfg", {".agentcoder.yml": "timeout: -1\n", "tests/test_a.py": "def test_a():\n    pass\n"})
    done = agentcoder("check", str(repo))
    assert done.returncode == 2
    assert "'timeout' must be a positive number" in done.stderr


def test_bad_setting_exits_2_naming_the_variable(tmp_path):
    done = agentcoder("check", str(tmp_path), env={"AGENTCODER_MAX_ITERATIONS": "0"})
    assert done.returncode == 2
    assert "AGENTCODER_MAX_ITERATIONS" in done.stderr


@pytest.mark.docker
def test_a_setup_network_that_does_not_exist_exits_2_naming_the_setting(tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    done = agentcoder("check", str(repo), env={"AGENTCODER_SANDBOX_SETUP_NETWORK": "agentcoder-no-such-network"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "agentcoder: AGENTCODER_SANDBOX_SETUP_NETWORK: no Docker network named 'agentcoder-no-such-network'"
        " (create it with `docker network create`, or use none or host)"]


def test_a_setup_network_name_that_cannot_be_one_exits_2(tmp_path):
    done = agentcoder("check", str(tmp_path), env={"AGENTCODER_SANDBOX_SETUP_NETWORK": "bridge; rm -rf /"})
    assert done.returncode == 2
    assert "AGENTCODER_SANDBOX_SETUP_NETWORK" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.docker
def test_check_conftest_import_error_is_reported_as_an_error_not_no_tests(tmp_path, sandbox):
    repo = make_repo(tmp_path / "conftest", {"conftest.py": "raise RuntimeError('conftest exploded')\n",
                                             "tests/test_a.py": "def test_a():\n    pass\n"})
    done = agentcoder("check", str(repo), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["problem"] == "collection_error" and report["errors"] == 1
    assert "conftest exploded" in report["collection_errors"][0]["message"]

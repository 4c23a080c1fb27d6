"""The executor against the real Docker engine: outcomes, limits, isolation, caching."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import docker.errors
import pytest

from bot.repo_config import load_repo_config
from bot.sandbox.executor import Sandbox, SetupFailed, SetupOptions
from bot.sandbox.results import RunProblem, RunResult, parse_report
from tests.conftest import make_repo
from tests.samples import CALC

pytestmark = pytest.mark.docker

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
        ".agentcoder.yml": "timeout: 10\n",
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


def test_a_setup_that_writes_2_gb_is_stopped_by_the_disk_limit_and_nothing_is_cached(sandbox, tmp_path):
    repo = make_repo(tmp_path / "fill", {
        ".agentcoder.yml": "setup:\n  - for i in $(seq 1 20); do dd if=/dev/zero of=/tmp/fill$i bs=1M count=100; done\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    config = load_repo_config(repo)
    with pytest.raises(SetupFailed) as info:
        sandbox.environment_image(repo, config)
    assert "No space left on device" in info.value.log_tail and "disk limit" in info.value.log_tail
    with pytest.raises(docker.errors.ImageNotFound):
        sandbox.client.images.get(sandbox.images.tag_for(repo, config))


def test_setup_is_locked_down_and_what_it_generates_is_in_every_test_run(sandbox, tmp_path):
    repo = make_repo(tmp_path / "locked", {
        ".agentcoder.yml": "setup:\n  - cp /proc/self/status setup_status.txt\n"
                           "  - echo \"VERSION = '1.2.3'\" > _version.py\n",
        "tests/test_setup.py": """
            import re

            def test_setup_ran_unprivileged():
                status = open("setup_status.txt").read()
                assert re.search(r"^Uid:\\t65534\\t", status, re.M)
                assert "CapEff:\\t0000000000000000" in status and "CapBnd:\\t0000000000000000" in status
                assert "NoNewPrivs:\\t1" in status

            def test_generated_file_is_there():
                from _version import VERSION
                assert VERSION == "1.2.3"
        """,
    })
    first = run(sandbox, repo)
    second = run(sandbox, repo, extra_files={"tests/test_more.py": "def test_more():\n    pass\n"})
    assert first.outcomes() == {"tests/test_setup.py::test_setup_ran_unprivileged": "passed",
                                "tests/test_setup.py::test_generated_file_is_there": "passed"}, first.output
    assert second.count("passed") == 3, second.output
    assert not (repo / "_version.py").exists()
    image = sandbox.client.images.get(sandbox.environment_image(repo, load_repo_config(repo)))
    assert not image.attrs["Config"].get("Volumes")


def test_setup_cannot_reach_the_hosts_loopback(sandbox, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    repo = make_repo(tmp_path / "reach", {
        ".agentcoder.yml": f"setup:\n  - python -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\"\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    with pytest.raises(SetupFailed) as info:
        sandbox.environment_image(repo, load_repo_config(repo))
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert "OSError" in info.value.log_tail or "refused" in info.value.log_tail or "unreachable" in info.value.log_tail


def test_repositories_with_identical_dependency_files_get_separate_images(sandbox, tmp_path):
    shared = {
        ".agentcoder.yml": "setup:\n  - sh prepare.sh\n",
        "calc.py": "def add(a, b):\n    return a - b\n",
        "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    }
    # The first repository's setup plants a .pth that "fixes" add for every Python process of its image
    # started in the repository (it imports calc from the working directory and patches it).
    site = "/opt/venv/lib/python3.11/site-packages"
    planter = make_repo(tmp_path / "planter", {**shared, "prepare.sh": (
        f"echo 'import os, sys; sys.path.insert(0, os.getcwd()); import calc_fix' > {site}/zz.pth\n"
        f"printf 'try:\\n    import calc\\n    calc.add = lambda a, b: a + b\\nexcept ImportError:\\n    pass\\n'"
        f" > {site}/calc_fix.py\n"
    )})
    victim = make_repo(tmp_path / "victim", {**shared, "prepare.sh": "true\n"})
    planted = run(sandbox, planter)
    assert planted.outcomes() == {"tests/test_calc.py::test_add": "passed"}, planted.output  # the plant works
    honest = run(sandbox, victim)
    assert sandbox.images.tag_for(planter, load_repo_config(planter)) != sandbox.images.tag_for(victim, load_repo_config(victim))
    assert honest.outcomes() == {"tests/test_calc.py::test_add": "failed"}, honest.output


def test_no_host_path_is_mounted_and_nothing_is_left_behind(sandbox, tmp_path):
    repo = make_repo(tmp_path / "calc", CALC)
    image = sandbox.environment_image(repo, load_repo_config(repo))
    seen, stop = [], threading.Event()
    events = sandbox.client.events(decode=True, filters={"type": "container", "event": "start", "label": "agentcoder"})

    def watch():
        for event in events:
            try:
                attrs = sandbox.client.api.inspect_container(event["id"])
                seen.append((attrs["HostConfig"].get("Binds"), attrs["Mounts"], attrs["Config"]["Image"]))
            except docker.errors.NotFound:
                seen.append(("gone before inspection", None, None))
            if stop.is_set():
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = run(sandbox, repo, extra_files={"tests/test_new.py": "def test_new():\n    pass\n"})
    stop.set()
    events.close()
    watcher.join(timeout=10)
    assert result.count("passed") == 2 and result.count("failed") == 1, result.output
    ours = [entry for entry in seen if entry[2] == image]
    assert ours and all(binds is None and mounts == [] for binds, mounts, _ in ours), seen
    leftovers = sandbox.client.containers.list(all=True, filters={"ancestor": image})
    assert leftovers == []


def test_host_setup_network_commits_an_image_without_volumes(sandbox, tmp_path):
    # The bundle travels in the setup's input tar; no package is fetched, so no traffic leaves the machine.
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
    online = Sandbox(sandbox.client, sandbox.base_image, sandbox.limits, timeout_s=120,
                     setup=SetupOptions(network="host", ca_bundle=ca))
    repo = make_repo(tmp_path / "host", {
        ".agentcoder.yml": "setup:\n  - test \"$PIP_CERT\" = /tmp/agentcoder/ca.crt && grep -q 'not really' \"$PIP_CERT\"\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    result = run(online, repo)
    assert result.outcomes() == {"tests/test_a.py::test_a": "passed"}, result.output
    assert not online.client.images.get(online.images.tag_for(repo, load_repo_config(repo))).attrs["Config"].get("Volumes")


def test_a_forged_report_cannot_turn_failures_into_passes(sandbox, tmp_path):
    repo = make_repo(tmp_path / "forge", {"tests/test_forge.py": """
        import atexit, json, os

        FORGED = [{"kind": "test", "id": f"tests/test_forge.py::{name}", "when": "call", "outcome": "passed",
                   "message": ""} for name in ("test_one", "test_two")]

        def rewrite():
            text = "".join(json.dumps(record) + "\\n" for record in FORGED + [{"kind": "finish", "exitstatus": 0}])
            for name in ("AGENTCODER_REPORT", "AGENTCODER_REPORT_FD"):
                assert name not in os.environ
            for fd in range(3, 64):
                try:
                    os.write(fd, text.encode())
                except OSError:
                    pass
            os._exit(0)

        atexit.register(rewrite)

        def test_one():
            assert False

        def test_two():
            assert False
    """})
    result = run(sandbox, repo)
    assert result.outcomes() == {"tests/test_forge.py::test_one": "failed", "tests/test_forge.py::test_two": "failed"}
    assert result.exit_code == 0 and not result.ok
    assert result.problem is RunProblem.REPORT_MISMATCH
    assert "finish" in result.describe_problem() or "exited with 0" in result.describe_problem()


def test_a_conftest_that_fails_to_import_is_a_collection_error_with_its_text(sandbox, tmp_path):
    repo = make_repo(tmp_path / "conftest", {
        "tests/conftest.py": "import not_installed_anywhere_xyz\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    result = run(sandbox, repo)
    assert result.problem is RunProblem.COLLECTION_ERROR, result.output
    assert "not_installed_anywhere_xyz" in result.collection_errors[0].message
    assert result.to_json()["errors"] == 1 and "no tests" not in result.describe_problem()


def test_a_pytest_usage_error_is_a_collection_error(sandbox, tmp_path):
    repo = make_repo(tmp_path / "usage", {
        ".agentcoder.yml": "test_command: python -m pytest --no-such-option-xyz\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    result = run(sandbox, repo)
    assert result.exit_code == 4 and result.problem is RunProblem.COLLECTION_ERROR
    assert "--no-such-option-xyz" in result.collection_errors[0].message


def test_pytest_configuration_is_honoured(sandbox, tmp_path):
    repo = make_repo(tmp_path / "config", {
        "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['checks']\npython_files = ['check_*.py']\n",
        "checks/check_math.py": "def test_math():\n    assert 1 + 1 == 2\n",
        "tests/test_ignored.py": "def test_ignored():\n    assert False\n",
    })
    assert run(sandbox, repo).outcomes() == {"checks/check_math.py::test_math": "passed"}


def test_zero_configuration_hatch_vcs_project_with_its_generated_version_file(sandbox, tmp_path):
    repo = make_repo(tmp_path / "vcs", {
        "pyproject.toml": """
            [build-system]
            requires = ["hatchling", "hatch-vcs"]
            build-backend = "hatchling.build"

            [project]
            name = "vcs-sample"
            dynamic = ["version"]

            [tool.hatch.version]
            source = "vcs"

            [tool.hatch.build.hooks.vcs]
            version-file = "src/vcs_sample/_version.py"

            [tool.hatch.build.targets.wheel]
            packages = ["src/vcs_sample"]
        """,
        ".gitignore": "src/vcs_sample/_version.py\n",
        "src/vcs_sample/__init__.py": "from vcs_sample._version import version\n",
        "tests/test_version.py": "import vcs_sample\n\ndef test_version():\n    assert vcs_sample.version\n",
    })
    result = run(sandbox, repo)
    assert result.outcomes() == {"tests/test_version.py::test_version": "passed"}, result.output

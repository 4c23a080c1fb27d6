"""`agentcoder check` and `fix` on a repository whose `.agentcoder.yml` is malformed: exit 2, one line naming
the file and the setting, never its contents, before any Docker or model is needed."""

from __future__ import annotations

import os

import pytest

from tests.cli_runs import HEAVY_MODULES, Run, run_process
from tests.conftest import free_port, make_repo

BAD_FILES = {
    "unknown key": ("colour: blue\n", "unknown setting(s) 'colour'"),
    "wrong type": ("timeout: soon\n", "'timeout' must be a positive number"),
    "not YAML": ("setup: [unclosed sk-secretvalue1234\n", "is not valid YAML (line "),
}


def unreachable() -> dict[str, str]:
    """No Docker daemon and no model server can be reached: the config must be refused before either is needed."""
    return {"DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}", "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}


def repo_with_config(tmp_path, text: str | None, *, symlink: bool = False):
    files = {"calc.py": "def add(a, b):\n    return a + b\n"}
    root = tmp_path / "repo"
    if symlink:
        files["elsewhere.yml"] = "setup: [echo hi]\n"
        root.mkdir()
        (root / ".agentcoder.yml").symlink_to("elsewhere.yml")
    elif text is not None:
        files[".agentcoder.yml"] = text
    return make_repo(root, files)


def assert_one_line_naming_the_file(done: Run, message: str) -> None:
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in done.stderr
    assert line.startswith("agentcoder: .agentcoder.yml") and message in line
    assert "sk-secretvalue1234" not in done.stderr + done.stdout


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_check_refuses_a_malformed_config(cli, tmp_path, name):
    text, message = BAD_FILES[name]
    assert_one_line_naming_the_file(cli("check", repo_with_config(tmp_path, text), env=unreachable()), message)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_fix_refuses_a_malformed_config(cli, tmp_path, name):
    text, message = BAD_FILES[name]
    done = cli("fix", repo_with_config(tmp_path, text), "--issue", "add() is wrong", env=unreachable())
    assert_one_line_naming_the_file(done, message)


@pytest.mark.parametrize("command", ["check", "fix"])
def test_a_symlinked_config_is_refused(cli, tmp_path, command):
    args = [command, repo_with_config(tmp_path, None, symlink=True)]
    done = cli(*args, *(["--issue", "add() is wrong"] if command == "fix" else []), env=unreachable())
    assert_one_line_naming_the_file(done, "must be a regular file, not a symbolic link")


@pytest.mark.parametrize("command", ["check", "fix"])
def test_as_a_process_a_malformed_config_is_refused_before_the_app_is_imported(tmp_path, command):
    # The command as a user runs it: start-up adds nothing to the one line, and neither the sandbox's nor the
    # loop's modules are imported before the refusal.
    text, message = BAD_FILES["not YAML"]
    args = [command, repo_with_config(tmp_path, text), *(["--issue", "add() is wrong"] if command == "fix" else [])]
    done, imported = run_process(*args, env={**os.environ, **unreachable()})
    assert_one_line_naming_the_file(done, message)
    assert imported.isdisjoint(HEAVY_MODULES), sorted(imported & HEAVY_MODULES)

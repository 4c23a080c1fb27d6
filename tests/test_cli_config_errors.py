"""`agentcoder check` and `fix` on a repository whose `.agentcoder.yml` is malformed: exit 2, one line naming
the file and the setting, never its contents, before any Docker or model is needed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import free_port, make_repo

BAD_FILES = {
    "unknown key": ("colour: blue\n", "unknown setting(s) 'colour'"),
    "wrong type": ("timeout: soon\n", "'timeout' must be a positive number"),
    "not YAML": ("setup: [unclosed sk-secretvalue1234\n", "is not valid YAML (line "),
}


def agentcoder(*args: str) -> subprocess.CompletedProcess[str]:
    # No Docker daemon and no model server can be reached: the config must be refused before either is needed.
    env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


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


def assert_one_line_naming_the_file(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in done.stderr
    assert line.startswith("agentcoder: .agentcoder.yml") and message in line
    assert "sk-secretvalue1234" not in done.stderr + done.stdout


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_check_refuses_a_malformed_config(tmp_path, name):
    text, message = BAD_FILES[name]
    assert_one_line_naming_the_file(agentcoder("check", str(repo_with_config(tmp_path, text))), message)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_fix_refuses_a_malformed_config(tmp_path, name):
    text, message = BAD_FILES[name]
    done = agentcoder("fix", str(repo_with_config(tmp_path, text)), "--issue", "add() is wrong")
    assert_one_line_naming_the_file(done, message)


@pytest.mark.parametrize("command", ["check", "fix"])
def test_a_symlinked_config_is_refused(tmp_path, command):
    args = [command, str(repo_with_config(tmp_path, None, symlink=True))]
    done = agentcoder(*args, *(["--issue", "add() is wrong"] if command == "fix" else []))
    assert_one_line_naming_the_file(done, "must be a regular file, not a symbolic link")

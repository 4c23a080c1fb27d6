"""The stand-in's bare repositories on disk: create, read refs and files, measure a PR's diff."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

# Where the stand-in looks for git: the system's directories, never the user's environment.
GIT_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The server's own git must not see the host user's configuration or identity.
GIT_ENV = {
    "PATH": GIT_SEARCH_PATH,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "octocat",
    "GIT_AUTHOR_EMAIL": "octocat@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.com",
    "LC_ALL": "C",
}


def git(bare: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one git command against a bare repository."""
    return subprocess.run(["git", "--git-dir", str(bare), *args], env={**GIT_ENV, **(env or {})},
                          capture_output=True, text=True, check=check)


def create_from_directory(bare: Path, source: Path, branch: str = "main") -> str:
    """Make `bare` a bare repository whose first commit on `branch` holds the files of `source`; returns its sha."""
    if bare.exists():
        raise FileExistsError(f"{bare} already exists")
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(bare)], env=GIT_ENV, check=True,
                   capture_output=True)
    git(bare, "config", "http.receivepack", "true")
    with tempfile.TemporaryDirectory() as scratch:
        # A private index with `source` as work tree: .git is never added, .gitignore is honoured.
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": str(source)}
        git(bare, "add", "-A", ".", env=env)
        tree = git(bare, "write-tree", env=env).stdout.strip()
    commit = git(bare, "commit-tree", tree, "-m", "Initial commit").stdout.strip()
    git(bare, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def rev_parse(bare: Path, ref: str) -> str | None:
    """The commit sha `ref` names, or None when it names nothing."""
    done = git(bare, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def branch_sha(bare: Path, branch: str) -> str | None:
    """The sha at the tip of `branch`, or None when there is no such branch."""
    return rev_parse(bare, f"refs/heads/{branch}")


def read_file(bare: Path, ref: str, path: str) -> str | None:
    """The text of `path` at `ref`, or None when either is missing."""
    done = git(bare, "show", f"{ref}:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


def diff_stats(bare: Path, base: str, head: str) -> dict[str, int]:
    """Commits, additions, deletions and changed files of `head` against its merge base with `base`."""
    stats = {"commits": 0, "additions": 0, "deletions": 0, "changed_files": 0}
    if rev_parse(bare, base) is None or rev_parse(bare, head) is None:
        return stats
    stats["commits"] = int(git(bare, "rev-list", "--count", f"{base}..{head}").stdout.strip() or 0)
    for line in git(bare, "diff", "--numstat", f"{base}...{head}").stdout.splitlines():
        added, deleted, _path = line.split("\t", 2)
        stats["changed_files"] += 1
        stats["additions"] += int(added) if added.isdigit() else 0
        stats["deletions"] += int(deleted) if deleted.isdigit() else 0
    return stats

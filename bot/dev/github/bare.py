"""The stand-in's bare repositories on disk: create, read refs and files, measure a PR's diff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


RULES_FILE = "standin-rules.json"
VERIFIED_FILE = "standin-verified"
ZERO = "0" * 40

# GitHub's checks on a push, as a pre-receive hook: workflow files need the `workflows` permission (the
# token's is in STANDIN_WORKFLOWS), and a ruleset may require verified signatures (GH013): only commits
# GitHub made itself (listed in VERIFIED_FILE) pass that.
PRE_RECEIVE = r'''#!{python}
import json, os, subprocess, sys
git_dir = os.environ.get("GIT_DIR", ".")
def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout
try:
    rules = json.load(open(os.path.join(git_dir, "{rules}")))
except OSError:
    rules = {{}}
try:
    verified = set(open(os.path.join(git_dir, "{verified}")).read().split())
except OSError:
    verified = set()
may_touch_workflows = os.environ.get("STANDIN_WORKFLOWS") == "write"
for line in sys.stdin:
    old, new, ref = line.split()
    if new == "{zero}":
        continue
    commits = git("rev-list", new, "--not", "--all").split()
    if not may_touch_workflows:
        for commit in commits:
            for path in git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit).split("\n"):
                if path.startswith(".github/workflows/"):
                    print(f"refusing to allow a GitHub App to create or update workflow `{{path}}` without "
                          "`workflows` permission", file=sys.stderr)
                    sys.exit(1)
    unsigned = [c for c in commits if c not in verified]
    if rules.get("signed_commits") and unsigned:
        print(f"error: GH013: Repository rule violations found for {{ref}}.", file=sys.stderr)
        print("- Commits must have verified signatures.", file=sys.stderr)
        print(f"  Found {{len(unsigned)}} violation{{'s' if len(unsigned) > 1 else ''}}:", file=sys.stderr)
        for commit in unsigned:
            print(f"  {{commit}}", file=sys.stderr)
        sys.exit(1)
'''


def install_rules(bare: Path, rules: dict) -> None:
    """Write the repository's rules where its pre-receive hook reads them, and install the hook."""
    (bare / RULES_FILE).write_text(json.dumps(rules))
    hook = bare / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(PRE_RECEIVE.format(python=sys.executable, rules=RULES_FILE, verified=VERIFIED_FILE, zero=ZERO))
    hook.chmod(0o755)


def mark_verified(bare: Path, sha: str) -> None:
    """Let the hook know GitHub made (and signed) this commit."""
    with open(bare / VERIFIED_FILE, "a") as out:
        out.write(sha + "\n")


def create_empty(bare: Path, branch: str = "main") -> None:
    """An empty bare repository: no commit, HEAD naming `branch`."""
    if bare.exists():
        raise FileExistsError(f"{bare} already exists")
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(bare)], env=GIT_ENV, check=True,
                   capture_output=True)
    git(bare, "config", "http.receivepack", "true")


def create_from_directory(bare: Path, source: Path, branch: str = "main") -> str:
    """Make `bare` a bare repository whose first commit on `branch` holds the files of `source`; returns its sha."""
    create_empty(bare, branch)
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


# The Git Data API's objects


def write_blob(bare: Path, data: bytes) -> str:
    """Store a blob; its sha."""
    done = subprocess.run(["git", "--git-dir", str(bare), "hash-object", "-w", "--stdin"], input=data,
                          env=GIT_ENV, capture_output=True, check=True)
    return done.stdout.decode().strip()


def object_type(bare: Path, sha: str) -> str | None:
    """blob, tree, commit or tag; None when there is no such object."""
    done = git(bare, "cat-file", "-t", sha, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def write_tree(bare: Path, base_tree: str | None, entries: list[dict]) -> str:
    """A tree: `base_tree` with `entries` ({path, mode, type, sha or None to delete}) laid over it; its sha."""
    with tempfile.TemporaryDirectory() as scratch:
        # update-index wants a work tree even though nothing is read from it.
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": scratch}
        if base_tree:
            git(bare, "read-tree", base_tree, env=env)
        else:
            git(bare, "read-tree", "--empty", env=env)
        for entry in entries:
            if entry.get("sha") is None:
                git(bare, "update-index", "--force-remove", "--", entry["path"], env=env)
            else:
                git(bare, "update-index", "--add", "--cacheinfo", f"{entry['mode']},{entry['sha']},{entry['path']}",
                    env=env)
        return git(bare, "write-tree", env=env).stdout.strip()


def tree_entries(bare: Path, tree: str) -> list[dict]:
    """The top-level entries of a tree."""
    out = []
    for line in git(bare, "ls-tree", tree).stdout.splitlines():
        meta, path = line.split("\t", 1)
        mode, kind, sha = meta.split()
        out.append({"path": path, "mode": mode, "type": kind, "sha": sha})
    return out


def write_commit(bare: Path, tree: str, parents: list[str], message: str, author: dict, committer: dict) -> str:
    """A commit object (author/committer: name, email, date); its sha."""
    env = {"GIT_AUTHOR_NAME": author["name"], "GIT_AUTHOR_EMAIL": author["email"], "GIT_AUTHOR_DATE": author["date"],
           "GIT_COMMITTER_NAME": committer["name"], "GIT_COMMITTER_EMAIL": committer["email"],
           "GIT_COMMITTER_DATE": committer["date"]}
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    return git(bare, *args, env=env).stdout.strip()


def read_commit(bare: Path, sha: str) -> dict | None:
    """{sha, tree, parents, message, author, committer} of a commit, or None."""
    if object_type(bare, sha) != "commit":
        return None
    fmt = "%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    fields = git(bare, "show", "-s", f"--format={fmt}", sha).stdout.split("\0", 8)
    tree, parents, an, ae, ad, cn, ce, cd, message = fields
    return {"sha": sha, "tree": tree, "parents": parents.split(), "message": message.rstrip("\n"),
            "author": {"name": an, "email": ae, "date": ad}, "committer": {"name": cn, "email": ce, "date": cd}}


def is_ancestor(bare: Path, older: str, newer: str) -> bool:
    """True when `older` is reachable from `newer`."""
    return git(bare, "merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


def set_ref(bare: Path, ref: str, sha: str) -> None:
    """Point a ref (refs/heads/...) at a commit."""
    git(bare, "update-ref", ref, sha)


def changed_paths(bare: Path, commit: str) -> list[str]:
    """Paths a commit changes against its first parent (all of them for a root commit)."""
    return git(bare, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit).stdout.split()

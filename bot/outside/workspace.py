"""The working copy the agents edit: the only module that uses git (through GitPython).

Credentials never touch `.git/config`: a token travels as an HTTP header in the environment of
the one git command that needs it (`GIT_CONFIG_COUNT`), never in argv, the remote URL or a file.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import shutil
import stat
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from bot.loop.context import SourceFile

BOT_AUTHOR = git.Actor("AgentCoder", "agentcoder@users.noreply.github.com")
MAX_TEXT_FILE_BYTES = 1_000_000


class WorkspaceError(Exception):
    """A git operation failed; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class LocalCommit:
    """A commit as files: what the Git Data API needs to make it again on GitHub."""

    message: str
    files: dict[str, tuple[str, bytes] | None]  # path → (mode, content); None: deleted


def slugify(text: str, max_length: int = 48) -> str:
    """`Fix: the parser's crash!` → `fix-the-parser-s-crash`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "issue"


def _token_environment(token: str) -> dict[str, str]:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",
    }


def _safe_git_error(exc: git.GitCommandError, token: str | None = None) -> WorkspaceError:
    text = (exc.stderr or str(exc)).strip()
    if token:
        text = text.replace(token, "***")
    return WorkspaceError(" ".join(text.split())[-500:])


class Workspace:
    """A git working copy that belongs to one job."""

    def __init__(self, path: Path, author: git.Actor = BOT_AUTHOR):
        self.path = path
        self.repo = git.Repo(path)
        self.author = author

    @classmethod
    def create(cls, path: Path, files: dict[str, str], message: str) -> Workspace:
        """A new repository on branch main holding `files` (path → text) in one commit by the bot."""
        repo = git.Repo.init(path, initial_branch="main")
        workspace = cls(path)
        for relative, text in files.items():
            workspace.write(relative, text)
        repo.git.add(A=True)  # not index.add: it changes the process's directory, and callers run in threads
        repo.index.commit(message, author=BOT_AUTHOR, committer=BOT_AUTHOR)
        return workspace

    @classmethod
    def clone_local(cls, source: Path, dest: Path) -> Workspace:
        """Clone a local checkout's HEAD, so the checkout's own branch and working tree stay as they are."""
        try:
            origin = git.Repo(source)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise WorkspaceError(f"{source} is not a git checkout") from exc
        if not origin.head.is_valid():
            raise WorkspaceError(f"{source} has no commit yet")
        try:
            git.Repo.clone_from(str(source.resolve()), dest, no_checkout=False)
        except git.GitCommandError as exc:
            raise _safe_git_error(exc) from exc
        workspace = cls(dest)
        workspace.repo.git.checkout(origin.head.commit.hexsha, detach=True)
        return workspace

    @staticmethod
    def uncommitted_changes(checkout: Path) -> list[str]:
        """Paths of a checkout whose working tree differs from HEAD (modified, staged, new; ignored files aside)."""
        try:
            status = git.Repo(checkout).git.status("--porcelain", "-z", "--untracked-files=all")
        except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
            return []
        paths, entries = [], iter(status.split("\0"))
        for entry in entries:
            if len(entry) < 4:
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":
                next(entries, None)  # a rename's or copy's old path
        return paths

    @classmethod
    def clone_at(cls, source: str, dest: Path, commit: str) -> Workspace:
        """Clone a repository (a local checkout or bare mirror, or a URL) with `commit` checked out, detached."""
        try:
            git.Repo.clone_from(source, dest, no_checkout=True, env={"GIT_TERMINAL_PROMPT": "0"})
        except git.GitCommandError as exc:
            raise _safe_git_error(exc) from exc
        workspace = cls(dest)
        try:
            workspace.repo.git.checkout(commit, detach=True)
        except git.GitCommandError as exc:
            raise WorkspaceError(f"commit {commit} is not in {source}") from exc
        return workspace

    @classmethod
    def clone_remote(cls, url: str, token: str, dest: Path, branch: str | None = None, *,
                     author: tuple[str, str] | None = None) -> Workspace:
        """Clone over HTTPS with an installation token that is kept out of `.git/config`; commits by `author`
        (name, email) when given."""
        options = ["--branch", branch] if branch else []
        try:
            git.Repo.clone_from(url, dest, env=_token_environment(token), multi_options=options)
        except git.GitCommandError as exc:
            raise _safe_git_error(exc, token) from exc
        return cls(dest, git.Actor(*author) if author else BOT_AUTHOR)

    def remote_branch_authors(self, url: str, token: str, branch: str, base: str) -> set[str] | None:
        """The author e-mails of the commits `branch` on the remote has beyond `base`; None when it has no such branch."""
        try:
            with self.repo.git.custom_environment(**_token_environment(token)):
                self.repo.git.fetch(url, f"+refs/heads/{branch}:refs/agentcoder/remote")
        except git.GitCommandError as exc:
            if "couldn't find remote ref" in (exc.stderr or ""):
                return None
            raise _safe_git_error(exc, token) from exc
        emails = self.repo.git.log("--format=%ae", f"{base}..refs/agentcoder/remote").split()
        self.repo.git.update_ref("-d", "refs/agentcoder/remote")
        return set(emails)

    # -- files ----------------------------------------------------------------------------

    def files(self) -> list[str]:
        """Tracked and new (untracked, not ignored) regular files, sorted; symlinks and what lies behind them are left out."""
        tracked = self.repo.git.ls_files("-z", "--cached", "--others", "--exclude-standard").split("\0")
        return sorted({path for path in tracked if path and self._regular(path)})

    def opaque(self, relative: str) -> str | None:
        """Why the bot may not look into or write `relative` (a symlink on its way), or None."""
        current = self.path
        for part in relative.split("/"):
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return None
            except OSError as exc:
                return f"it cannot be inspected ({exc.strerror})"
            if stat.S_ISLNK(mode):
                return ("it is a symbolic link" if current == self.path / relative
                        else f"{current.relative_to(self.path)} on its way is a symbolic link") + \
                    ", which AgentCoder never reads or writes through"
        return None

    def _regular(self, relative: str) -> bool:
        try:
            return self.opaque(relative) is None and stat.S_ISREG(os.lstat(self.path / relative).st_mode)
        except OSError:
            return False

    def read(self, relative: str) -> str | None:
        """A text file's content; None when it is missing, binary, too large, or not a regular file (a symlink)."""
        try:
            fd = self._open(relative, os.O_RDONLY)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_TEXT_FILE_BYTES:
                return None
            data = handle.read(MAX_TEXT_FILE_BYTES + 1)
        if len(data) > MAX_TEXT_FILE_BYTES or b"\0" in data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def read_for_agent(self, relative: str) -> tuple[str | None, str | None]:
        """A text file for an agent's READ: (text, None), or (None, why not) in one line; never follows a symlink."""
        parts = [part for part in relative.split("/") if part not in ("", ".")]
        if not parts or ".." in parts or relative.startswith("/"):
            return None, f"{relative} is outside the repository"
        path = self.path
        for part in parts:
            path = path / part
            if path.is_symlink():
                return None, f"{relative} is (or is inside) a symbolic link, which is never read"
        if not path.exists():
            return None, f"{relative} does not exist in the repository"
        if not path.is_file():
            return None, f"{relative} is not a regular file"
        if path.stat().st_size > MAX_TEXT_FILE_BYTES:
            return None, f"{relative} is larger than {MAX_TEXT_FILE_BYTES:,} bytes; READ one of its classes or functions"
        text = self.read(relative)
        if text is None:
            return None, f"{relative} is a binary (or not UTF-8) file"
        return text, None

    def write(self, relative: str, text: str) -> None:
        """Write a file inside the working copy, never through a symlink (WorkspaceError names the refusal)."""
        try:
            fd = self._open(relative, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create_parents=True)
        except OSError as exc:
            reason = self.opaque(relative) or exc.strerror
            raise WorkspaceError(f"{relative} cannot be written: {reason}") from None
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    def _open(self, relative: str, flags: int, *, create_parents: bool = False) -> int:
        """Open a path below the working copy one component at a time, refusing every symlink (ELOOP)."""
        parts = [part for part in relative.split("/") if part]
        if not parts or any(part in (".", "..") for part in parts):
            raise OSError(errno.EINVAL, "not a path inside the working copy")
        directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                try:
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
                except FileNotFoundError:
                    if not create_parents:
                        raise
                    os.mkdir(part, dir_fd=directory)
                    child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
                os.close(directory)
                directory = child
            # O_NONBLOCK: a FIFO in the repository must not hang the job; it is refused as not regular.
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=directory)
        finally:
            os.close(directory)

    def delete(self, relative: str) -> None:
        """Remove a file from the working copy, if it is there (never through a symbolic link)."""
        if self.opaque(relative) is None:
            (self.path / relative).unlink(missing_ok=True)

    def source_files(self) -> list[SourceFile]:
        """Every text file, for the agents' context."""
        out = []
        for relative in self.files():
            text = self.read(relative)
            if text is not None:
                out.append(SourceFile(relative, text))
        return out

    def is_python_project(self) -> bool:
        """True when the repository holds any Python source."""
        return any(path.endswith(".py") or path in {"pyproject.toml", "setup.py"} for path in self.files())

    # -- history --------------------------------------------------------------------------

    def committed_text(self, ref: str, relative: str, max_bytes: int = MAX_TEXT_FILE_BYTES) -> str | None:
        """A regular file's text as committed at `ref` (not the working copy); None when it is not there."""
        listing = self.repo.git.ls_tree("-z", "--full-tree", ref, "--", relative).split("\0")[0]
        if not listing:
            return None
        mode, kind, sha = listing.split("\t", 1)[0].split()
        if kind != "blob" or mode not in ("100644", "100755"):
            raise WorkspaceError(f"{relative} at {ref} must be a regular file, not a symbolic link or a directory")
        if int(self.repo.git.cat_file("-s", sha)) > max_bytes:
            raise WorkspaceError(f"{relative} at {ref} is larger than {max_bytes // 1024} KiB")
        return self.repo.odb.stream(bytes.fromhex(sha)).read().decode("utf-8", errors="replace")

    def head(self) -> str:
        """The current commit's sha."""
        return self.repo.head.commit.hexsha

    def changed_files(self, since: str) -> list[str]:
        """Files that differ from commit `since`, including new ones."""
        self.repo.git.add(A=True)
        # -z: names as they are (a non-ASCII name would otherwise come back quoted and escaped).
        names = self.repo.git.diff("--cached", "--name-only", "-z", since).split("\0")
        return sorted(name for name in names if name)

    def diff(self, since: str, paths: list[str]) -> str:
        """The unified diff of `paths` from commit `since` to the working tree, new files included."""
        if not paths:
            return ""
        self.repo.git.add(A=True)
        text = self.repo.git.diff("--cached", "--no-color", "--no-ext-diff", since, "--", *paths)
        return text + "\n" if text else ""

    def apply_patch(self, patch: str) -> None:
        """Apply a unified diff to the working tree; WorkspaceError says why it does not apply."""
        with tempfile.NamedTemporaryFile("w", suffix=".diff", encoding="utf-8", delete=False) as file:
            file.write(patch if patch.endswith("\n") else patch + "\n")
        try:
            self.repo.git.apply("--whitespace=nowarn", file.name)
        except git.GitCommandError as exc:
            raise _safe_git_error(exc) from exc
        finally:
            Path(file.name).unlink(missing_ok=True)

    def start_branch(self, branch: str) -> None:
        """Create (or reset) `branch` at the current commit and switch to it."""
        self.repo.git.checkout("-B", branch)

    def commit_all(self, message: str) -> str | None:
        """Commit every change as the bot; None when there was nothing to commit."""
        self.repo.git.add(A=True)
        if not self.repo.index.diff("HEAD"):
            return None
        commit = self.repo.index.commit(message, author=self.author, committer=self.author)
        return commit.hexsha

    def commits_since(self, base: str) -> list[LocalCommit]:
        """The commits from `base` to HEAD, oldest first, each as the files it changes."""
        out = []
        for sha in self.repo.git.rev_list("--reverse", f"{base}..HEAD").split():
            commit = self.repo.commit(sha)
            files: dict[str, tuple[str, bytes] | None] = {}
            for line in self.repo.git.diff_tree("--no-commit-id", "-r", "-z", "--no-renames", f"{sha}^", sha).split("\0:"):
                if not line.strip("\0"):
                    continue
                meta, _, path = line.lstrip(":").partition("\0")
                path = path.rstrip("\0")
                _old_mode, new_mode, _old, new_sha, status = meta.split()
                if status == "D":
                    files[path] = None
                else:
                    files[path] = (new_mode, self.repo.odb.stream(bytes.fromhex(new_sha)).read())
            out.append(LocalCommit(commit.message, files))
        return out

    def patch_since(self, base: str) -> str:
        """The change from `base` to HEAD as a unified diff."""
        return self.repo.git.diff(base, "HEAD")

    def restore(self, commit: str, files: dict[str, str | None]) -> None:
        """Reset the working copy to `commit`, then lay `files` over it (an earlier attempt put back)."""
        self.repo.git.reset("--hard", commit)
        self.repo.git.clean("-fdq")
        for relative, text in files.items():
            if text is not None:
                self.write(relative, text)

    def publish_to_local(self, target: Path, branch: str) -> None:
        """Copy `branch` into the checkout it was cloned from, without touching that checkout's working tree."""
        try:
            git.Repo(target).git.fetch(str(self.path.resolve()), f"+refs/heads/{branch}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise _safe_git_error(exc) from exc

    def push(self, url: str, token: str, branch: str, *, force: bool = False) -> None:
        """Push `branch` to `url` with an installation token held only in the command's environment."""
        refspec = f"{'+' if force else ''}refs/heads/{branch}:refs/heads/{branch}"
        try:
            with self.repo.git.custom_environment(**_token_environment(token)):
                self.repo.git.push(url, refspec)
        except git.GitCommandError as exc:
            raise _safe_git_error(exc, token) from exc

    # -- the unchanged code, beside the working copy -----------------------------------------

    def merge_base(self, ref: str) -> str | None:
        """Where the current branch left `ref` (the unchanged code of a pull request); None when unrelated."""
        try:
            return self.repo.git.merge_base("HEAD", ref).strip() or None
        except git.GitCommandError:
            return None

    def touched_since(self, commit: str, path: str) -> bool:
        """True when a commit after `commit` (up to HEAD) changed `path`; False too when `commit` is unknown."""
        try:
            return bool(self.repo.git.log("--format=%H", f"{commit}..HEAD", "--", path).strip())
        except git.GitCommandError:
            return False

    @contextmanager
    def checkout_of(self, commit: str) -> Iterator[Workspace]:
        """A separate, detached working copy of `commit` for the length of the block; this one is left alone."""
        with temporary_directory("agentcoder-unchanged-") as scratch:
            path = scratch / "work"
            try:
                self.repo.git.worktree("add", "--detach", "--quiet", str(path), commit)
            except git.GitCommandError as exc:
                raise _safe_git_error(exc) from exc
            try:
                yield Workspace(path)
            finally:
                self.repo.git.worktree("remove", "--force", str(path))


@contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    """A scratch directory that is removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

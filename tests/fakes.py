"""In-memory fakes of the small Protocols the loop and the App's job depend on (no Docker, no HTTP).

The real components are exercised by the contract and end-to-end tests (marked `docker`); these let
the logic around them be tested directly, bedevere-style.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.outside.github import (
    BotIdentity,
    IssueInfo,
    PullInfo,
    RepoInfo,
    ReviewComment,
    links_issue,
)
from bot.outside.model import Reply, Role, tokens_for
from bot.repo_config import RepoConfig
from bot.sandbox.results import CollectionError, RunResult, TestOutcome


def run_of(outcomes: Mapping[str, str], *, messages: Mapping[str, str] | None = None, **extra) -> RunResult:
    """A RunResult from test id → outcome (passed | failed | error | skipped)."""
    messages = messages or {}
    tests = [TestOutcome(test_id, outcome, messages.get(test_id, "")) for test_id, outcome in outcomes.items()]
    return RunResult(tests=tests, exit_code=0 if all(o == "passed" for o in outcomes.values()) else 1, **extra)


def uncollectable(path: str, message: str) -> RunResult:
    """A run in which `path` could not be collected."""
    return RunResult(collection_errors=[CollectionError(path, message)], exit_code=2)


Judge = Callable[[dict[str, str], tuple[str, ...]], RunResult]


@dataclass
class FakeRunner:
    """A TestRunner whose verdicts come from `judge(files, selection)`: the checkout's text files plus the extra files."""

    judge: Judge
    calls: list[tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=list)

    def run_tests(self, repo: Path, config: RepoConfig, extra_files: Mapping[str, str] | None = None,
                  selection: Sequence[str] = ()) -> RunResult:
        files = {path.relative_to(repo).as_posix(): path.read_text(errors="replace")
                 for path in repo.rglob("*") if path.is_file() and ".git" not in path.relative_to(repo).parts}
        files |= dict(extra_files or {})
        self.calls.append((tuple(selection), dict(extra_files or {})))
        return self.judge(files, tuple(selection))


class FakeModel:
    """A ChatModel answering each role from its own script (the last answer repeats); records every request.

    An answer may be an exception (raised) or a `(text, truncated)` pair.
    """

    def __init__(self, **scripts: Sequence[object]):
        self.scripts = {Role(role): list(answers) for role, answers in scripts.items()}
        self.requests: list[tuple[Role, list[dict]]] = []

    def complete(self, role: Role, messages: list[dict], *, max_tokens: int | None = None) -> Reply:
        """Record the request and give the role's next scripted answer."""
        self.requests.append((Role(role), [dict(message) for message in messages]))
        script = self.scripts.get(Role(role)) or [""]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        text, truncated = answer if isinstance(answer, tuple) else (answer, False)
        prompt = "".join(str(message.get("content") or "") for message in messages)
        return Reply(text, f"fake-{role}", tokens_for(prompt), tokens_for(text), 0.0, truncated)

    def texts_seen_by(self, role: Role) -> str:
        """Everything `role` was ever shown, as one text."""
        return "\n".join(str(m.get("content") or "") for r, messages in self.requests if r == role for m in messages)


class FakeClock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float = 0.0):
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


@dataclass
class FakeRepository:
    """One repository as the App's job sees GitHub: issues, pulls, comments and permissions in memory.

    Cloning and pushing use real git against `bare`, a local bare repository (no network).
    """

    bare: Path
    permissions: dict[str, str] = field(default_factory=dict)
    issues: dict[int, IssueInfo] = field(default_factory=dict)
    pulls: dict[int, PullInfo] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    statuses: dict[int, list[str]] = field(default_factory=dict)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    reviews: dict[int, list[ReviewComment]] = field(default_factory=dict)
    pull_bodies: dict[int, list[str]] = field(default_factory=dict)
    default_branch: str = "main"
    archived: bool = False
    comment_reactions: list[tuple[int, str, bool]] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(100))

    def token(self) -> str:
        """A made-up installation token (what a leak check looks for)."""
        return "ghs_FAKEINSTALLATIONTOKEN0123456789abcd"

    def repository(self) -> RepoInfo:
        """The bare repository's path, its default branch, whether archived."""
        return RepoInfo(str(self.bare), self.default_branch, self.archived)

    def branch_sha(self, branch: str) -> str | None:
        """The tip of a branch of the bare repository, or None."""
        done = subprocess.run(["git", "--git-dir", str(self.bare), "rev-parse", "--verify", "--quiet",
                               f"refs/heads/{branch}"], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    def pulls_for_branch(self, branch: str, state: str = "open") -> list[PullInfo]:
        """The pull requests (open, closed or all) whose head is `branch`."""
        return [p for p in self.pulls.values() if p.head_ref == branch and state in ("all", p.state)]

    def open_pulls_linking(self, number: int) -> list[PullInfo]:
        """Open pull requests whose body closes issue #number."""
        return [p for p in self.pulls.values() if p.state == "open" and links_issue(p.body, number)]

    def react_to_comment(self, comment_id: int, content: str = "eyes", *, review_comment: bool = False) -> None:
        """React to an issue comment or a review comment."""
        self.comment_reactions.append((comment_id, content, review_comment))

    def create_commits(self, branch, base_sha, commits, *, force: bool) -> str:
        """GitHub's Git Data API is not faked: a push to the bare repository never fails here."""
        raise NotImplementedError("the fake repository takes every push")

    def can_write(self, username: str) -> bool:
        """Write, maintain and admin may trigger the bot."""
        return self.permissions.get(username, "none") in {"admin", "maintain", "write"}

    def issue(self, number: int) -> IssueInfo:
        """An issue or pull request by number."""
        return self.issues[number]

    def pull(self, number: int) -> PullInfo:
        """A pull request by number."""
        return self.pulls[number]

    def open_pull_for_branch(self, branch: str) -> PullInfo | None:
        """The open pull request whose head is `branch`."""
        return next((p for p in self.pulls.values() if p.head_ref == branch and p.state == "open"), None)

    def create_pull(self, title: str, head: str, base: str, body: str) -> PullInfo:
        """Open a draft pull request (recorded with its body)."""
        if "create_pull" in self.fail_on:
            raise RuntimeError(f"GitHub create pull request failed with {self.token()}")
        number = next(self._numbers)
        pull = PullInfo(number, f"https://github.example/pull/{number}", "open", "agentcoder[bot]", head, body, True)
        self.pulls[number] = pull
        self.pull_bodies[number] = [body]
        self.issues[number] = IssueInfo(number, title, body, "open", False, "agentcoder[bot]", True)
        return pull

    def update_pull_body(self, number: int, body: str) -> None:
        """Replace a pull request's body."""
        self.pull_bodies.setdefault(number, []).append(body)

    def review_comments(self, number: int) -> list[ReviewComment]:
        """The review comments of a pull request."""
        return list(self.reviews.get(number, []))

    def react(self, number: int, content: str = "eyes") -> None:
        """Add a reaction to an issue or pull request."""
        self.reactions.append((number, content))

    def comment(self, number: int, body: str) -> int:
        """Post a comment."""
        self.comments.setdefault(number, []).append(body)
        return len(self.comments[number])

    def set_status(self, number: int, text: str, bot_login: str) -> int:
        """Create or edit the bot's one status comment (here: every version is kept)."""
        self.statuses.setdefault(number, []).append(text)
        return 1


@dataclass
class FakeGitHub:
    """The App installed on fake repositories."""

    repositories: dict[str, FakeRepository]
    bot: BotIdentity = BotIdentity("agentcoder[bot]", 41898282)

    def identity(self, installation_id: int) -> BotIdentity:
        """The App's bot user."""
        return self.bot

    def repo(self, full_name: str, installation_id: int) -> FakeRepository:
        """The client of one repository."""
        return self.repositories[full_name]

"""GitHub, as the App sees it: the only module that uses githubkit.

`GitHubApp` authenticates as the App (JWT), learns its bot user lazily, and mints installation tokens
scoped to one repository and the permissions a job needs, refreshed before they expire; `RepoClient`
makes the installation-scoped calls one job needs, on one repository. Every call honours GitHub's rate
limits (`RetryPolicy`), and every error says what GitHub answered (`GitHubError`), never a token.
"""

from __future__ import annotations

import base64
import enum
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy, UnauthAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)
from githubkit.retry import RetryOption

from bot.outside.tls import tls_context
from bot.redact import redact

STATUS_MARKER = "<!-- agentcoder:status -->"
# GitHub's `permission` is the base level of any role, custom ones included: maintain → write, triage → read.
WRITE_PERMISSIONS = frozenset({"admin", "write"})
TOKEN_REFRESH_MARGIN_S = 300
# What one job needs of its token (least privilege: one repository, these permissions).
JOB_PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"}
MAX_BODY = 65536  # GitHub's limit on issue, comment and pull request bodies
MAX_MESSAGE = 300
NO_DRAFTS = "Draft pull requests are not supported"
WIP_NOTE = ("> **Work in progress.** This repository does not accept draft pull requests, so this one is open for "
            "review as work in progress: read it as a draft.\n\n")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Failure(enum.Enum):
    """What kind of failure a GitHubError is."""

    refused = "refused"  # GitHub answered 4xx: it will answer the same again
    unauthorized = "unauthorized"  # 401: the App's key or id is wrong
    unavailable = "unavailable"  # no answer, or 5xx: try again later
    rate_limited = "rate_limited"  # waited as GitHub asked, up to our cap, and gave up


class GitHubError(Exception):
    """A GitHub call failed; the message names the call and quotes GitHub's answer, never a token."""

    def __init__(self, message: str, failure: Failure, status: int | None = None, github_message: str = ""):
        super().__init__(message)
        self.failure = failure
        self.status = status
        self.github_message = github_message


@dataclass(frozen=True)
class IssueInfo:
    """The parts of an issue (or PR) a job reads."""

    number: int
    title: str
    body: str
    state: str
    locked: bool
    author: str
    is_pull_request: bool
    assignees: tuple[str, ...] = ()
    created_at: float = 0.0  # seconds since the epoch


@dataclass(frozen=True)
class PullInfo:
    """The parts of a pull request a job reads."""

    number: int
    url: str
    state: str
    author: str
    head_ref: str
    body: str
    draft: bool = False

    @classmethod
    def of(cls, data) -> PullInfo:
        """From githubkit's pull request model (full or simple)."""
        return cls(data.number, data.html_url, data.state, _login(data.user), data.head.ref, data.body or "",
                   bool(getattr(data, "draft", False)))


@dataclass(frozen=True)
class RepoInfo:
    """The parts of a repository a job reads."""

    clone_url: str
    default_branch: str
    archived: bool


@dataclass(frozen=True)
class BotIdentity:
    """The App's bot user: its login and the commit identity GitHub links to it."""

    login: str
    user_id: int

    @property
    def name(self) -> str:
        """`<slug>[bot]`."""
        return self.login

    @property
    def email(self) -> str:
        """`<id>+<slug>[bot]@users.noreply.github.com`, the address GitHub attributes to the bot."""
        return f"{self.user_id}+{self.login}@users.noreply.github.com"


class CommitToCreate(Protocol):
    """One local commit to recreate through the Git Data API."""

    message: str
    files: dict[str, tuple[str, bytes] | None]  # path → (mode, content), None for a deletion


@dataclass(frozen=True)
class ReviewComment:
    """A review comment on a pull request's diff."""

    id: int
    author: str
    path: str
    line: int | None
    body: str
    commit: str  # the commit it was written on

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.body}" if self.line else f"{self.path}: {self.body}"


def _login(user) -> str:
    return user.login if user else ""


def _timestamp(value) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp() if value else 0.0


def bounded(body: str) -> str:
    """A body within GitHub's 65,536-character limit, saying so when it had to be cut."""
    if len(body) <= MAX_BODY:
        return body
    note = "\n\n… (cut to GitHub's limit of 65,536 characters)"
    return body[: MAX_BODY - len(note)] + note


def github_message(response) -> str:
    """GitHub's `message` and `errors[].message` (or code and field) of an error answer, one line, bounded."""
    try:
        data = json.loads(response.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    parts = [str(data.get("message") or "").strip()]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            text = error.get("message") or " ".join(str(error[k]) for k in ("resource", "field", "code") if error.get(k))
        else:
            text = str(error)
        if text and text not in parts:
            parts.append(str(text))
    text = redact(" ".join(": ".join(part for part in parts if part).split()))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class RetryPolicy:
    """GitHub's guidance as a githubkit retry decision: wait `retry-after` (or until `x-ratelimit-reset`, or a
    minute), backing off exponentially, for at most `max_wait_s` per wait and `max_retries` times; retry
    5xx and lost connections only for idempotent methods (a POST GitHub applied must not be repeated here)."""

    def __init__(self, *, max_retries: int = 5, max_wait_s: float = 900.0, backoff_s: float = 1.0,
                 server_retries: int = 3):
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.backoff_s = backoff_s
        self.server_retries = server_retries

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        """Whether and how long to wait before sending the request again."""
        if isinstance(exc, RateLimitExceeded):
            wait = max(exc.retry_after.total_seconds(), self.backoff_s * 2 ** retry_count)
            if retry_count >= self.max_retries or wait > self.max_wait_s:
                return RetryOption(False)
            return RetryOption(True, timedelta(seconds=max(wait, 0.001)))
        request = getattr(exc, "request", None) or getattr(getattr(exc, "exc", None), "request", None)
        method = getattr(request, "method", "POST")
        transient = (isinstance(exc, RequestFailed) and exc.response.status_code >= 500) or (
            isinstance(exc, RequestError) and not isinstance(exc, RequestFailed))
        if transient and method in _IDEMPOTENT and retry_count < self.server_retries:
            return RetryOption(True, timedelta(seconds=max(self.backoff_s * 2 ** retry_count, 0.001)))
        return RetryOption(False)


def _guarded(what: str, thunk):
    try:
        return thunk()
    except RateLimitExceeded as exc:
        message = github_message(exc.response.raw_response)
        raise GitHubError(f"GitHub {what} was rate limited and AgentCoder stopped waiting: {message or 'HTTP 403'}",
                          Failure.rate_limited, exc.response.status_code, message) from None
    except RequestFailed as exc:
        status = exc.response.status_code
        message = github_message(exc.response.raw_response)
        failure = (Failure.unavailable if status >= 500 else Failure.unauthorized if status == 401
                   else Failure.refused)
        raise GitHubError(f"GitHub {what} failed: HTTP {status}" + (f": {message}" if message else ""),
                          failure, status, message) from None
    except RequestError as exc:
        cause = type(getattr(exc, "exc", exc)).__name__
        raise GitHubError(f"GitHub {what} failed: GitHub's API could not be reached ({cause})",
                          Failure.unavailable) from None
    except GitHubException as exc:
        detail = redact(" ".join(str(exc).split()))[:200]
        raise GitHubError(f"GitHub {what} failed: {type(exc).__name__}" + (f" ({detail})" if detail else ""),
                          Failure.refused) from None


def _call(what: str, thunk):
    return _guarded(what, lambda: thunk().parsed_data)


def _every(what: str, github: GitHub, method, **kwargs) -> list:
    """Every item of a listed resource, following GitHub's `Link: rel="next"` pages."""
    return _guarded(what, lambda: list(github.rest.paginate(method, **kwargs)))


class GitHubApp:
    """The App's identity: JWT calls, its bot user, and installation tokens cached until shortly before they expire."""

    def __init__(self, app_id: str, private_key: str, api_url: str, *, auto_retry: bool | RetryPolicy = True):
        self.api_url = api_url.rstrip("/")
        # githubkit's own policy retries a POST after a 5xx (a duplicate comment); ours does not.
        self.retry: RetryPolicy | None = (RetryPolicy() if auto_retry is True else auto_retry or None)
        # githubkit's default cache is process-wide and keyed by app id only: give each App its own.
        self._app = GitHub(AppAuthStrategy(app_id, private_key), base_url=self.api_url, auto_retry=self._retry(),
                           cache_strategy=MemCacheStrategy(), ssl_verify=tls_context())
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._identity: BotIdentity | None = None
        self._slug: str | None = None
        self._lock = threading.Lock()

    def _retry(self):
        return self.retry if self.retry is not None else False

    @classmethod
    def from_settings(cls, settings) -> GitHubApp:
        """The App configured in the settings (which must have been checked by `require_github_app`)."""
        return cls(settings.github_app_id, settings.github_private_key_text(), settings.github_api_url)

    def bot_login(self) -> str:
        """The login the App's comments and PRs carry: `<slug>[bot]` (asked of GitHub once, then remembered)."""
        with self._lock:
            if self._slug is None:
                app = _call("GET /app", self._app.rest.apps.get_authenticated)
                self._slug = app.slug
            return f"{self._slug}[bot]"

    def known_bot_login(self) -> str | None:
        """The bot's login when it has been learned already; never calls GitHub."""
        return None if self._slug is None else f"{self._slug}[bot]"

    def identity(self, installation_id: int) -> BotIdentity:
        """The bot user (login and id, from GET /users/{login}), for commit authorship; remembered once known."""
        if self._identity is None:
            login = self.bot_login()
            gh = self._client(self.installation_token(installation_id, permissions={"metadata": "read"}))
            user = _call(f"GET /users/{login}", lambda: gh.rest.users.get_by_username(login))
            self._identity = BotIdentity(login, user.id)
        return self._identity

    def _client(self, token: str) -> GitHub:
        return GitHub(TokenAuthStrategy(token), base_url=self.api_url, auto_retry=self._retry(),
                      cache_strategy=MemCacheStrategy(), ssl_verify=tls_context())

    def installation_token(self, installation_id: int, repository: str | None = None,
                           permissions: dict[str, str] | None = None) -> str:
        """A valid installation token (for one repository and these permissions when given), minted again
        when the cached one is near its expiry."""
        key = (installation_id, repository, tuple(sorted((permissions or {}).items())))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - time.time() > TOKEN_REFRESH_MARGIN_S:
                return cached[0]
            scope = {}
            if repository is not None:
                scope["repositories"] = [repository]
            if permissions:
                scope["permissions"] = permissions
            token = _call("installation token", lambda: self._app.rest.apps.create_installation_access_token(
                installation_id, **scope))
            self._tokens[key] = (token.token, _timestamp(token.expires_at))
            return token.token

    def repo(self, full_name: str, installation_id: int) -> RepoClient:
        """A client for one repository, acting as the installation with a token scoped to that repository."""
        return RepoClient(self, full_name, installation_id)


_CLOSING = r"(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)"


def links_issue(body: str, number: int) -> bool:
    """True when a PR body closes issue #number with one of GitHub's keywords (`Fixes #12`)."""
    return re.search(rf"(?i)\b{_CLOSING}:?\s+#{number}\b", body or "") is not None


class RepoClient:
    """Installation-scoped calls on one repository."""

    def __init__(self, app: GitHubApp, full_name: str, installation_id: int):
        self.app = app
        self.owner, self.name = full_name.split("/", 1)
        self.installation_id = installation_id
        self._client: tuple[str, GitHub] | None = None

    def token(self) -> str:
        """The job's installation token (for git over HTTPS): this repository, the job's permissions."""
        return self.app.installation_token(self.installation_id, self.name, JOB_PERMISSIONS)

    def _gh(self) -> GitHub:
        # Keep the client referenced: githubkit's `.rest` holds it only weakly.
        token = self.token()
        if self._client is None or self._client[0] != token:
            self._client = (token, self.app._client(token))
        return self._client[1]

    # -- reading ------------------------------------------------------------------------------------

    def repository(self) -> RepoInfo:
        """Where to clone from, the branch PRs go to, and whether it is archived (read-only)."""
        repo = _call("get repository", lambda: self._gh().rest.repos.get(self.owner, self.name))
        return RepoInfo(repo.clone_url, repo.default_branch, bool(repo.archived))

    def clone_url_and_default_branch(self) -> tuple[str, str]:
        """Where to clone from, and the branch PRs go to."""
        info = self.repository()
        return info.clone_url, info.default_branch

    def branch_sha(self, branch: str) -> str | None:
        """The commit a branch points at; None when there is no such branch or the repository is empty."""
        try:
            ref = _call(f"get branch {branch}", lambda: self._gh().rest.git.get_ref(self.owner, self.name,
                                                                                    f"heads/{branch}"))
        except GitHubError as exc:
            if exc.status in (404, 409):  # 409: "Git Repository is empty."
                return None
            raise
        return ref.object_.sha

    def permission(self, username: str) -> str:
        """The base permission: admin | write | read | none (maintain counts as write, custom roles by their base)."""
        data = _call("get collaborator permission",
                     lambda: self._gh().rest.repos.get_collaborator_permission_level(self.owner, self.name, username))
        return data.permission

    def can_write(self, username: str) -> bool:
        """True when `username` may push to the repository."""
        return self.permission(username) in WRITE_PERMISSIONS

    def issue(self, number: int) -> IssueInfo:
        """An issue or pull request by number."""
        data = _call(f"get issue #{number}", lambda: self._gh().rest.issues.get(self.owner, self.name, number))
        pull = getattr(data, "pull_request", None)
        assignees = tuple(_login(user) for user in (data.assignees or []) if user)
        return IssueInfo(data.number, data.title, data.body or "", data.state, bool(data.locked), _login(data.user),
                         bool(pull), assignees, _timestamp(data.created_at))

    def pull(self, number: int) -> PullInfo:
        """A pull request by number."""
        data = _call(f"get pull request #{number}", lambda: self._gh().rest.pulls.get(self.owner, self.name, number))
        return PullInfo.of(data)

    def pulls_for_branch(self, branch: str, state: str = "open") -> list[PullInfo]:
        """The pull requests (open, closed or all) whose head is `branch` of this repository."""
        github = self._gh()
        pulls = _every("list pull requests", github, github.rest.pulls.list, owner=self.owner, repo=self.name,
                       state=state, head=f"{self.owner}:{branch}", per_page=100)
        return [PullInfo.of(data) for data in pulls if data.head.ref == branch]

    def open_pull_for_branch(self, branch: str) -> PullInfo | None:
        """The open pull request whose head is `branch` of this repository, if any."""
        found = self.pulls_for_branch(branch)
        return found[0] if found else None

    def open_pulls_linking(self, number: int) -> list[PullInfo]:
        """Open pull requests whose body closes issue #number (every page)."""
        github = self._gh()
        pulls = _every("list pull requests", github, github.rest.pulls.list, owner=self.owner, repo=self.name,
                       state="open", per_page=100)
        return [PullInfo.of(data) for data in pulls if links_issue(data.body or "", number)]

    def review_comments(self, number: int) -> list[ReviewComment]:
        """The review comments of a pull request (every page), oldest first."""
        github = self._gh()
        comments = _every("list review comments", github, github.rest.pulls.list_review_comments,
                          owner=self.owner, repo=self.name, pull_number=number, per_page=100)
        return [ReviewComment(comment.id, _login(comment.user), comment.path, getattr(comment, "line", None) or None,
                              comment.body, comment.original_commit_id or comment.commit_id) for comment in comments]

    # -- writing (each safe to repeat: a write GitHub applied before a lost answer is found, not made twice) ----

    def create_pull(self, title: str, head: str, base: str, body: str) -> PullInfo:
        """Open a draft pull request; where drafts are refused, an open one marked as work in progress.

        A pull request that already exists for `head` (this call repeated after a lost answer) is returned.
        """
        def create(draft: bool, text: str) -> PullInfo:
            data = _call("create pull request", lambda: self._gh().rest.pulls.create(
                self.owner, self.name, title=title, head=head, base=base, body=bounded(text), draft=draft))
            return PullInfo.of(data)

        try:
            return create(True, body)
        except GitHubError as exc:
            if exc.status == 422 and NO_DRAFTS in exc.github_message:
                return self._existing_pull(head) or create(False, WIP_NOTE + body)
            existing = self._existing_pull(head) if exc.failure is Failure.unavailable or exc.status == 422 else None
            if existing is None:
                raise
            return existing

    def _existing_pull(self, head: str) -> PullInfo | None:
        return self.open_pull_for_branch(head)

    def update_pull_body(self, number: int, body: str) -> None:
        """Replace a pull request's body."""
        _call("update pull request", lambda: self._gh().rest.pulls.update(self.owner, self.name, number,
                                                                          body=bounded(body)))

    def react(self, number: int, content: str = "eyes") -> None:
        """Add a reaction to an issue or pull request."""
        _call("add reaction", lambda: self._gh().rest.reactions.create_for_issue(
            self.owner, self.name, number, content=content))

    def react_to_comment(self, comment_id: int, content: str = "eyes", *, review_comment: bool = False) -> None:
        """Add a reaction to an issue comment (or a review comment on a diff)."""
        if review_comment:
            _call("add reaction", lambda: self._gh().rest.reactions.create_for_pull_request_review_comment(
                self.owner, self.name, comment_id, content=content))
        else:
            _call("add reaction", lambda: self._gh().rest.reactions.create_for_issue_comment(
                self.owner, self.name, comment_id, content=content))

    def comment(self, number: int, body: str) -> int:
        """Post a comment; its id. Repeated after a lost answer, the comment GitHub made is found instead."""
        body = bounded(body)
        try:
            data = _call("create comment", lambda: self._gh().rest.issues.create_comment(
                self.owner, self.name, number, body=body))
            return data.id
        except GitHubError as exc:
            if exc.failure is not Failure.unavailable:
                raise
        for existing in reversed(self._comments(number)):
            if existing.user and existing.user.login == self.app.bot_login() and existing.body == body:
                return existing.id
        data = _call("create comment", lambda: self._gh().rest.issues.create_comment(
            self.owner, self.name, number, body=body))
        return data.id

    def _comments(self, number: int) -> list:
        github = self._gh()
        return _every("list comments", github, github.rest.issues.list_comments,
                      owner=self.owner, repo=self.name, issue_number=number, per_page=100)

    def set_status(self, number: int, text: str, bot_login: str) -> int:
        """Create or edit the bot's one status comment on an issue or PR (found by its hidden marker)."""
        body = bounded(f"{STATUS_MARKER}\n{text}")
        # All pages: on a busy issue the status comment is past the first 100 and must still be found.
        for comment in self._comments(number):
            if comment.user and comment.user.login == bot_login and STATUS_MARKER in (comment.body or ""):
                _call("update comment", lambda: self._gh().rest.issues.update_comment(
                    self.owner, self.name, comment.id, body=body))
                return comment.id
        return self.comment(number, body)

    def create_commits(self, branch: str, base_sha: str, commits: Iterable[CommitToCreate], *,
                       force: bool) -> str:
        """Recreate local commits on `branch` through the Git Data API (GitHub signs them); the new tip's sha.

        The branch is created, or moved (forced when `force`, else a fast-forward from `base_sha`).
        """
        gh = self._gh
        parent = base_sha
        tree = _call("get commit", lambda: gh().rest.git.get_commit(self.owner, self.name, parent)).tree.sha
        for commit in commits:
            entries = []
            for path, change in sorted(commit.files.items()):
                if change is None:
                    entries.append({"path": path, "mode": "100644", "type": "blob", "sha": None})
                    continue
                mode, data = change
                blob = _call("create blob", lambda: gh().rest.git.create_blob(
                    self.owner, self.name, content=base64.b64encode(data).decode(), encoding="base64"))
                entries.append({"path": path, "mode": mode, "type": "blob", "sha": blob.sha})
            tree = _call("create tree", lambda: gh().rest.git.create_tree(
                self.owner, self.name, base_tree=tree, tree=entries)).sha
            parent = _call("create commit", lambda: gh().rest.git.create_commit(
                self.owner, self.name, message=commit.message, tree=tree, parents=[parent])).sha
        if self.branch_sha(branch) is None:
            _call("create branch", lambda: gh().rest.git.create_ref(self.owner, self.name,
                                                                    ref=f"refs/heads/{branch}", sha=parent))
        else:
            _call("update branch", lambda: gh().rest.git.update_ref(self.owner, self.name, f"heads/{branch}",
                                                                    sha=parent, force=force))
        return parent


@dataclass(frozen=True)
class AppRegistration:
    """What GitHub hands back once for an App registered from a manifest."""

    app_id: int
    slug: str
    html_url: str
    private_key: str
    webhook_secret: str


def convert_manifest(api_url: str, code: str) -> AppRegistration:
    """Exchange the one-time code of the manifest flow (POST /app-manifests/{code}/conversions, no auth)."""
    github = GitHub(UnauthAuthStrategy(), base_url=api_url.rstrip("/"), auto_retry=RetryPolicy(),
                    cache_strategy=MemCacheStrategy(), ssl_verify=tls_context())
    data = _call("app manifest conversion", lambda: github.rest.apps.create_from_manifest(code))
    return AppRegistration(data.id, data.slug or "", data.html_url, data.pem, data.webhook_secret or "")


def retry_until_reachable(call: Callable[[], object], *, is_cancelled: Callable[[], bool], max_wait_s: float,
                          first_wait_s: float = 1.0, cap_s: float = 60.0, sleep: Callable[[float], None] = time.sleep):
    """`call()`, repeated with exponential backoff while GitHub cannot be reached (or answers 5xx), up to
    `max_wait_s` in all; other errors, and the last unavailability, are raised."""
    waited, wait = 0.0, first_wait_s
    while True:
        try:
            return call()
        except GitHubError as exc:
            if exc.failure is not Failure.unavailable or waited >= max_wait_s or is_cancelled():
                raise
        step = min(wait, cap_s, max_wait_s - waited)
        sleep(step)
        waited += step
        wait *= 2

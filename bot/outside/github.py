"""GitHub, as the App sees it: the only module that uses githubkit.

`GitHubApp` authenticates as the App (JWT) and mints installation tokens, refreshed before they
expire; `RepoClient` makes the installation-scoped calls one job needs, on one repository.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed

STATUS_MARKER = "<!-- agentcoder:status -->"
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
TOKEN_REFRESH_MARGIN_S = 300


class GitHubError(Exception):
    """A GitHub call failed; the message names the call, never a token."""


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


@dataclass(frozen=True)
class PullInfo:
    """The parts of a pull request a job reads."""

    number: int
    url: str
    state: str
    author: str
    head_ref: str
    body: str

    @classmethod
    def of(cls, data) -> PullInfo:
        """From githubkit's pull request model (full or simple)."""
        return cls(data.number, data.html_url, data.state, _login(data.user), data.head.ref,
                   data.body or "")


def _login(user) -> str:
    return user.login if user else ""


def _call(what: str, thunk):
    return _guarded(what, lambda: thunk().parsed_data)


def _every(what: str, github: GitHub, method, **kwargs) -> list:
    """Every item of a listed resource, following GitHub's `Link: rel="next"` pages."""
    return _guarded(what, lambda: list(github.rest.paginate(method, **kwargs)))


def _guarded(what: str, thunk):
    try:
        return thunk()
    except RequestFailed as exc:
        raise GitHubError(f"GitHub {what} failed: HTTP {exc.response.status_code}") from None
    except GitHubException as exc:
        detail = " ".join(str(exc).split())[:200]
        raise GitHubError(f"GitHub {what} failed: {type(exc).__name__}" + (f" ({detail})" if detail else "")) from None


class GitHubApp:
    """The App's identity: JWT calls, and installation tokens cached until shortly before they expire."""

    def __init__(self, app_id: str, private_key: str, api_url: str, *, auto_retry: bool = True):
        self.api_url = api_url.rstrip("/")
        self.auto_retry = auto_retry
        # githubkit's default cache is process-wide and keyed by app id only: give each App its own.
        self._app = GitHub(AppAuthStrategy(app_id, private_key), base_url=self.api_url, auto_retry=auto_retry,
                           cache_strategy=MemCacheStrategy())
        self._tokens: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> GitHubApp:
        """The App configured in the settings (which must have been checked by `require_github_app`)."""
        return cls(settings.github_app_id, settings.github_private_key_text(), settings.github_api_url)

    def bot_login(self) -> str:
        """The login the App's comments and PRs carry: `<slug>[bot]`."""
        app = _call("GET /app", self._app.rest.apps.get_authenticated)
        return f"{app.slug}[bot]"

    def installation_token(self, installation_id: int) -> str:
        """A valid installation token, minted again when the cached one is near its expiry."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - time.time() > TOKEN_REFRESH_MARGIN_S:
                return cached[0]
            token = _call("installation token", lambda: self._app.rest.apps.create_installation_access_token(installation_id))
            expires = token.expires_at
            if isinstance(expires, str):
                expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
            self._tokens[installation_id] = (token.token, expires.replace(tzinfo=expires.tzinfo or timezone.utc).timestamp())
            return token.token

    def repo(self, full_name: str, installation_id: int) -> RepoClient:
        """A client for one repository, acting as the installation."""
        return RepoClient(self, full_name, installation_id)


class RepoClient:
    """Installation-scoped calls on one repository."""

    def __init__(self, app: GitHubApp, full_name: str, installation_id: int):
        self.app = app
        self.owner, self.name = full_name.split("/", 1)
        self.installation_id = installation_id
        self._client: tuple[str, GitHub] | None = None

    def token(self) -> str:
        """The installation token (for git over HTTPS)."""
        return self.app.installation_token(self.installation_id)

    def _gh(self) -> GitHub:
        # Keep the client referenced: githubkit's `.rest` holds it only weakly.
        token = self.token()
        if self._client is None or self._client[0] != token:
            self._client = (token, GitHub(TokenAuthStrategy(token), base_url=self.app.api_url,
                                          auto_retry=self.app.auto_retry, cache_strategy=MemCacheStrategy()))
        return self._client[1]

    def clone_url_and_default_branch(self) -> tuple[str, str]:
        """Where to clone from, and the branch PRs go to."""
        repo = _call("get repository", lambda: self._gh().rest.repos.get(self.owner, self.name))
        return repo.clone_url, repo.default_branch

    def permission(self, username: str) -> str:
        """admin | maintain | write | triage | read | none."""
        data = _call("get collaborator permission",
                     lambda: self._gh().rest.repos.get_collaborator_permission_level(self.owner, self.name, username))
        return getattr(data, "role_name", None) or data.permission

    def can_write(self, username: str) -> bool:
        """True when `username` may push to the repository."""
        return self.permission(username) in WRITE_PERMISSIONS

    def issue(self, number: int) -> IssueInfo:
        """An issue or pull request by number."""
        data = _call(f"get issue #{number}", lambda: self._gh().rest.issues.get(self.owner, self.name, number))
        pull = getattr(data, "pull_request", None)
        return IssueInfo(data.number, data.title, data.body or "", data.state, bool(data.locked), _login(data.user),
                         bool(pull))

    def pull(self, number: int) -> PullInfo:
        """A pull request by number."""
        data = _call(f"get pull request #{number}", lambda: self._gh().rest.pulls.get(self.owner, self.name, number))
        return PullInfo.of(data)

    def open_pull_for_branch(self, branch: str) -> PullInfo | None:
        """The open pull request whose head is `branch` of this repository, if any."""
        pulls = _call("list pull requests", lambda: self._gh().rest.pulls.list(
            self.owner, self.name, state="open", head=f"{self.owner}:{branch}"))
        for data in pulls:
            if data.head.ref == branch:
                return PullInfo.of(data)
        return None

    def create_draft_pull(self, title: str, head: str, base: str, body: str) -> PullInfo:
        """Open a draft pull request."""
        data = _call("create pull request", lambda: self._gh().rest.pulls.create(
            self.owner, self.name, title=title, head=head, base=base, body=body, draft=True))
        return PullInfo.of(data)

    def update_pull_body(self, number: int, body: str) -> None:
        """Replace a pull request's body."""
        _call("update pull request", lambda: self._gh().rest.pulls.update(self.owner, self.name, number, body=body))

    def review_comments(self, number: int) -> list[str]:
        """The review comments of a pull request, as `path:line: body` lines."""
        comments = _call("list review comments", lambda: self._gh().rest.pulls.list_review_comments(
            self.owner, self.name, number, per_page=100))
        out = []
        for comment in comments:
            where = f"{comment.path}:{comment.line}" if getattr(comment, "line", None) else comment.path
            out.append(f"{where}: {comment.body}")
        return out

    def react(self, number: int, content: str = "eyes") -> None:
        """Add a reaction to an issue or pull request."""
        _call("add reaction", lambda: self._gh().rest.reactions.create_for_issue(
            self.owner, self.name, number, content=content))

    def react_to_comment(self, comment_id: int, content: str = "eyes") -> None:
        """Add a reaction to an issue comment."""
        _call("add reaction", lambda: self._gh().rest.reactions.create_for_issue_comment(
            self.owner, self.name, comment_id, content=content))

    def comment(self, number: int, body: str) -> int:
        """Post a comment; its id."""
        data = _call("create comment", lambda: self._gh().rest.issues.create_comment(
            self.owner, self.name, number, body=body))
        return data.id

    def set_status(self, number: int, text: str, bot_login: str) -> int:
        """Create or edit the bot's one status comment on an issue or PR (found by its hidden marker)."""
        body = f"{STATUS_MARKER}\n{text}"
        # All pages: on a busy issue the status comment is past the first 100 and must still be found.
        github = self._gh()
        comments = _every("list comments", github, github.rest.issues.list_comments,
                          owner=self.owner, repo=self.name, issue_number=number, per_page=100)
        for comment in comments:
            if comment.user and comment.user.login == bot_login and STATUS_MARKER in (comment.body or ""):
                _call("update comment", lambda: self._gh().rest.issues.update_comment(
                    self.owner, self.name, comment.id, body=body))
                return comment.id
        return self.comment(number, body)

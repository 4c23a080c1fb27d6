"""GitHubStandin: the local GitHub the App's tests and `agentcoder playground` run against."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.dev.github import bare, hooks
from bot.dev.github.api import build_api
from bot.dev.github.hooks import Delivery
from bot.dev.github.render import APP_PERMISSIONS, Renderer
from bot.dev.github.smarthttp import GitSmartHTTP
from bot.dev.github.store import Store
from bot.dev.serving import ThreadedServer

APP_OWNER = "octo-org"


def generate_private_key_pem() -> str:
    """A fresh 2048-bit RSA key in the PKCS#1 PEM form GitHub hands out for Apps."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def public_key_pem(private_key_pem: str) -> str:
    """The public half of a PEM private key, as PEM."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class GitHubStandin:
    """A small stateful GitHub on 127.0.0.1: REST routes, git smart HTTP and signed webhooks."""

    def __init__(self, root: Path, *, app_id: int, app_private_key_pem: str | None = None,
                 app_slug: str = "agentcoder", webhook_url: str | None = None, webhook_secret: str | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.app_id = app_id
        self.app_private_key_pem = app_private_key_pem or generate_private_key_pem()
        self.app_slug = app_slug
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.store = Store()
        self.store.user(self.bot_login, "Bot")
        self._render: Renderer | None = None
        self._web: ThreadedServer | None = None

    # Lifecycle

    def start(self) -> GitHubStandin:
        """Serve on an ephemeral port of 127.0.0.1 in a background thread; returns self."""
        web = ThreadedServer(name="github-standin")
        app_info = {"id": self.app_id, "slug": self.app_slug, "name": self.app_slug.title(), "owner": APP_OWNER}
        self._render = Renderer(web.url, self.store, self.repo_path, app_info)
        api = build_api(self.store, self._render, app_id=self.app_id,
                        public_key_pem=public_key_pem(self.app_private_key_pem), bot_login=self.bot_login,
                        repo_path=self.repo_path)
        web.app = GitSmartHTTP(api, self.root, self._authorize_git)
        self._web = web.start()
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._web is not None:
            self._web.stop()
        self._web = None

    def __enter__(self) -> GitHubStandin:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """Base URL of the REST API, e.g. http://127.0.0.1:PORT (set by start())."""
        if self._render is None:
            raise RuntimeError("start() the stand-in first")
        return self._render.base

    def git_url(self, owner: str, repo: str) -> str:
        """The HTTPS-style clone URL of a repository (no credentials in it)."""
        return f"{self.api_url}/{owner}/{repo}.git"

    @property
    def bot_login(self) -> str:
        """The App's bot user, as GitHub names it."""
        return f"{self.app_slug}[bot]"

    def repo_path(self, owner: str, repo: str) -> Path:
        """Where the bare repository lives on disk."""
        return self.root / owner / f"{repo}.git"

    # Setting up state

    def create_repo(self, owner: str, name: str, source: Path, installation_id: int = 1) -> None:
        """A private repository whose first commit on main holds the files of `source`, under an installation."""
        self.store.add_repo(owner, name, installation_id)
        bare.create_from_directory(self.repo_path(owner, name), Path(source))

    def set_permission(self, owner: str, repo: str, username: str, permission: str) -> None:
        """Give a user a role on a repository: admin, maintain, write, triage, read or none."""
        self.store.set_permission(owner, repo, username, permission)

    def create_issue(self, owner: str, repo: str, title: str, body: str, user: str = "octocat") -> int:
        """Open an issue (no webhook); returns its number."""
        return self.store.add_issue(owner, repo, title, body, user)["number"]

    def installation_token(self, installation_id: int = 1, expires_in: float = 3600) -> str:
        """An installation token issued directly (a negative `expires_in` gives an expired one)."""
        return self.store.issue_token(installation_id, timedelta(seconds=expires_in), APP_PERMISSIONS)["token"]

    def add_review_comment(self, owner: str, repo: str, pr_number: int, body: str, user: str,
                           path: str | None = None, line: int | None = None) -> int:
        """Seed a review comment on a PR; returns its id."""
        record = self.store.issue(owner, repo, pr_number)
        if record is None or "pull" not in record:
            raise KeyError(f"{owner}/{repo}#{pr_number} is not a pull request")
        sha = bare.branch_sha(self.repo_path(owner, repo), record["pull"]["head"]) or record["pull"]["head_sha"]
        return self.store.add_review_comment(owner, repo, pr_number, body, user, path, line, sha)["id"]

    # Actions that deliver webhooks

    def label_issue(self, owner: str, repo: str, number: int, label: str, sender: str) -> Delivery:
        """Add a label to an issue or PR and deliver `issues` / `labeled`."""
        issue = self.store.add_label(owner, repo, number, label)
        render = self._render_or_fail()
        payload = {"action": "labeled", "issue": render.issue(issue), "label": render.label(owner, repo, label),
                   **self._context(owner, repo, sender)}
        return self.deliver("issues", payload)

    def comment(self, owner: str, repo: str, number: int, body: str, sender: str,
                sender_type: str = "User") -> Delivery:
        """Comment on an issue or PR as `sender` and deliver `issue_comment` / `created`."""
        self.store.user(sender, sender_type)
        comment = self.store.add_comment(owner, repo, number, body, sender)
        render = self._render_or_fail()
        payload = {"action": "created", "issue": render.issue(self.store.issue(owner, repo, number)),
                   "comment": render.comment(comment), **self._context(owner, repo, sender)}
        return self.deliver("issue_comment", payload)

    def deliver(self, event: str, payload: dict, *, delivery_id: str | None = None, secret: str | None = None,
                signature: str | None = None) -> Delivery:
        """Send one raw event to webhook_url: a chosen delivery id (redelivery), another secret, or a forged signature."""
        if self.webhook_url is None:
            raise RuntimeError("this stand-in has no webhook_url to deliver to")
        return hooks.deliver(self.webhook_url, event, payload, secret=secret or self.webhook_secret,
                             app_id=self.app_id, delivery_id=delivery_id, signature=signature)

    def _render_or_fail(self) -> Renderer:
        if self._render is None:
            raise RuntimeError("start() the stand-in first")
        return self._render

    def _context(self, owner: str, repo: str, sender: str) -> dict:
        render = self._render_or_fail()
        installation_id = self.store.repo(owner, repo)["installation_id"]
        return {"repository": render.repository(owner, repo), "sender": render.user(sender),
                "installation": render.simple_installation(installation_id)}

    # State to inspect (deep copies: safe to read while the server runs)

    @property
    def issues(self) -> dict[tuple[str, str, int], dict]:
        """(owner, repo, number) → issue record; PRs included, with their `pull` sub-dict."""
        return self.store.snapshot("issues")

    @property
    def pulls(self) -> dict[tuple[str, str, int], dict]:
        """(owner, repo, number) → PR record (title, body, state, labels, pull: head, base, draft...)."""
        return {key: record for key, record in self.store.snapshot("issues").items() if "pull" in record}

    @property
    def comments(self) -> list[dict]:
        """All issue and PR comments, oldest first: owner, repo, number, id, body, user..."""
        return sorted(self.store.snapshot("comments").values(), key=lambda comment: comment["id"])

    @property
    def reactions(self) -> list[dict]:
        """All reactions: owner, repo, subject ("issue" | "comment"), subject_id, content, user."""
        return self.store.snapshot("reactions")

    @property
    def review_comments(self) -> list[dict]:
        """All seeded review comments, oldest first."""
        return sorted(self.store.snapshot("review_comments").values(), key=lambda comment: comment["id"])

    def comments_on(self, owner: str, repo: str, number: int) -> list[dict]:
        """The comments of one issue or PR, oldest first."""
        return self.store.comments_on(owner, repo, number)

    def branch_sha(self, owner: str, repo: str, branch: str) -> str | None:
        """The tip of a branch in the bare repository, or None."""
        return bare.branch_sha(self.repo_path(owner, repo), branch)

    def read_file(self, owner: str, repo: str, ref: str, path: str) -> str | None:
        """A file's text at a ref (branch, tag or sha), or None when either is missing."""
        return bare.read_file(self.repo_path(owner, repo), ref, path)

    # Git access

    def _authorize_git(self, owner: str, repo: str, _username: str, password: str) -> int:
        installation_id = self.store.token_installation(password)
        if installation_id is None:
            return 401
        record = self.store.repo(owner, repo)
        if record is None or not self.repo_path(owner, repo).is_dir():
            return 404
        return 200 if record["installation_id"] == installation_id else 401

"""GitHubStandin: the local GitHub the App's tests and `agentcoder playground` run against."""

from __future__ import annotations

import functools
import json
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse

from bot.dev.github import bare, hooks
from bot.dev.github.api import Fault, Faults, build_api
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


@functools.cache
def throwaway_private_key_pem() -> str:
    """The key of every stand-in App made without one in this process (made once: a key takes ~70 ms)."""
    return generate_private_key_pem()


@functools.cache  # loading an RSA key checks it: ~45 ms, once per key is enough
def public_key_pem(private_key_pem: str) -> str:
    """The public half of a PEM private key, as PEM."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class GitHubStandin:
    """A small stateful GitHub on 127.0.0.1: REST routes, git smart HTTP and signed webhooks."""

    def __init__(self, root: Path, *, app_id: int, app_private_key_pem: str | None = None,
                 app_slug: str = "agentcoder", webhook_url: str | None = None, webhook_secret: str | None = None,
                 jwt_tokens: bool = True):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.app_id = app_id
        self.app_private_key_pem = app_private_key_pem or throwaway_private_key_pem()
        self.app_slug = app_slug
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.jwt_tokens = jwt_tokens
        self.store = Store()
        self.store.user(self.bot_login, "Bot")
        self.faults = Faults()
        self.manifests: list[dict] = []  # what `agentcoder register` posted to the new-App forms
        self._render: Renderer | None = None
        self._web: ThreadedServer | None = None
        self._port = 0

    # Lifecycle

    def start(self) -> GitHubStandin:
        """Serve on 127.0.0.1 in a background thread (an ephemeral port, or the one it had before a stop()); self."""
        web = ThreadedServer(name="github-standin", port=self._port)
        self._port = web.port
        app_info = {"id": self.app_id, "slug": self.app_slug, "name": self.app_slug.title(), "owner": APP_OWNER}
        self._render = Renderer(web.url, self.store, self.repo_path, app_info)
        api = build_api(self.store, self._render, app_id=self.app_id,
                        public_key_pem=public_key_pem(self.app_private_key_pem), bot_login=self.bot_login,
                        repo_path=self.repo_path, faults=self.faults, jwt_tokens=self.jwt_tokens)
        self._add_manifest_form(api)
        web.app = GitSmartHTTP(api, self.root, self._authorize_git)
        self._web = web.start()
        return self

    def _add_manifest_form(self, api) -> None:
        """GitHub's new-App forms: a posted manifest registers this stand-in's App and redirects with a code."""
        async def new_app(request: Request, org: str | None = None):
            form = parse_qs((await request.body()).decode())
            try:
                manifest = json.loads(form["manifest"][0])
                redirect = manifest["redirect_url"]
            except (KeyError, IndexError, ValueError, TypeError):
                return JSONResponse({"message": "Invalid manifest"}, status_code=422)
            self.manifests.append({"org": org, "manifest": manifest})
            code = secrets.token_hex(10)
            self.webhook_secret = self.webhook_secret or secrets.token_hex(20)
            self.offer_manifest_conversion(code, app_id=self.app_id, slug=self.app_slug,
                                           private_key_pem=self.app_private_key_pem,
                                           webhook_secret=self.webhook_secret, owner=org or APP_OWNER)
            query = {"code": code, **({"state": request.query_params["state"]} if "state" in request.query_params else {})}
            return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

        api.add_api_route("/settings/apps/new", new_app, methods=["POST"])
        api.add_api_route("/organizations/{org}/settings/apps/new", new_app, methods=["POST"])

    @property
    def running(self) -> bool:
        """True while the server answers."""
        return self._web is not None

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

    def create_repo(self, owner: str, name: str, source: Path | None, installation_id: int = 1, *,
                    private: bool = True, plan: str = "team", default_branch: str = "main", archived: bool = False,
                    signed_commits: bool = False) -> None:
        """A repository whose first commit on `default_branch` holds the files of `source` (None: an empty one).

        Its traits are GitHub's: visibility and the owner's plan (drafts need a public repository or a Team or
        Enterprise plan), archived (read-only), and a ruleset requiring signed commits (GH013 on a push).
        """
        self.store.add_repo(owner, name, installation_id, private=private, plan=plan, default_branch=default_branch,
                            archived=archived, signed_commits=signed_commits)
        path = self.repo_path(owner, name)
        if source is None:
            bare.create_empty(path, default_branch)
        else:
            bare.create_from_directory(path, Path(source), default_branch)
        bare.install_rules(path, {"signed_commits": signed_commits})

    def require_signed_commits(self, owner: str, repo: str, required: bool = True) -> None:
        """Turn a ruleset requiring verified signatures on (or off) for every branch."""
        self.store.update_repo(owner, repo, signed_commits=required)
        bare.install_rules(self.repo_path(owner, repo), {"signed_commits": required})

    def add_custom_role(self, owner: str, role: str, base: str) -> None:
        """An organisation's custom repository role inheriting from `base` (read, triage, write, maintain, admin)."""
        self.store.add_custom_role(owner, role, base)

    def set_permission(self, owner: str, repo: str, username: str, permission: str) -> None:
        """Give a user a role on a repository: admin, maintain, write, triage, read, none or a custom role."""
        self.store.set_permission(owner, repo, username, permission)

    def assign(self, owner: str, repo: str, number: int, login: str) -> None:
        """Assign an issue to a user."""
        record = self.store.issue(owner, repo, number)
        self.store.update_issue(owner, repo, number, assignees=[*record["assignees"], login])

    def open_pull(self, owner: str, repo: str, title: str, body: str, head: str, user: str, base: str = "main") -> int:
        """A pull request a person opened from `head` (which must exist); returns its number."""
        sha = bare.branch_sha(self.repo_path(owner, repo), head)
        if sha is None:
            raise KeyError(f"no branch {head}")
        pull = {"head": head, "base": base, "draft": False, "head_sha": sha}
        return self.store.add_issue(owner, repo, title, body, user, pull=pull)["number"]

    def inject(self, method: str, path: str, kind: str | int, *, times: int = 1, retry_after_s: int = 1,
               applied: bool = False) -> Fault:
        """Answer the next `times` requests matching method and path (a regex) with a rate limit or an error."""
        return self.faults.add(Fault(method, path, kind, times, retry_after_s, applied))

    def offer_manifest_conversion(self, code: str, *, app_id: int, slug: str, private_key_pem: str,
                                  webhook_secret: str, owner: str = APP_OWNER) -> None:
        """What `POST /app-manifests/{code}/conversions` answers once: the App GitHub registered from a manifest."""
        render = self._render_or_fail()
        app = {**render.app(), "id": app_id, "slug": slug, "name": slug.title(), "owner": render.user(owner),
               "client_id": f"Iv1.{app_id:016x}", "node_id": f"A_{app_id}", "html_url": f"{render.base}/apps/{slug}"}
        self.store.add_conversion(code, {**app, "client_secret": "client-secret-" + code,
                                         "webhook_secret": webhook_secret, "pem": private_key_pem})

    def create_issue(self, owner: str, repo: str, title: str, body: str, user: str = "octocat") -> int:
        """Open an issue (no webhook); returns its number."""
        return self.store.add_issue(owner, repo, title, body, user)["number"]

    def installation_token(self, installation_id: int = 1, expires_in: float = 3600) -> str:
        """An installation token issued directly (a negative `expires_in` gives an expired one)."""
        return self.store.issue_token(installation_id, timedelta(seconds=expires_in), APP_PERMISSIONS,
                                      app_id=self.app_id, jwt_shaped=self.jwt_tokens)["token"]

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

    def review(self, owner: str, repo: str, number: int, body: str, sender: str, state: str = "commented") -> Delivery:
        """Submit a review with a body on a PR as `sender` and deliver `pull_request_review` / `submitted`."""
        render = self._render_or_fail()
        record = self.store.issue(owner, repo, number)
        review_id = self.store.next_id()
        user = render.user(sender)
        html = f"{render.base}/{owner}/{repo}/pull/{number}"
        review = {"id": review_id, "node_id": f"PRR_{review_id}", "user": user, "body": body,
                  "commit_id": bare.branch_sha(self.repo_path(owner, repo), record["pull"]["head"]) or "",
                  "submitted_at": "2024-01-01T00:00:00Z", "state": state, "html_url": f"{html}#pullrequestreview-{review_id}",
                  "pull_request_url": f"{render.base}/repos/{owner}/{repo}/pulls/{number}",
                  "author_association": render.author_association(owner, repo, sender),
                  "_links": {"html": {"href": html}, "pull_request": {"href": html}}}
        payload = {"action": "submitted", "review": review, "pull_request": render.pull(record, simple=True),
                   **self._context(owner, repo, sender)}
        return self.deliver("pull_request_review", payload)

    def review_comment(self, owner: str, repo: str, number: int, body: str, sender: str, path: str = "README.md",
                       line: int = 1) -> Delivery:
        """Comment on a line of a PR's diff as `sender` and deliver `pull_request_review_comment` / `created`."""
        comment_id = self.add_review_comment(owner, repo, number, body, sender, path, line)
        render = self._render_or_fail()
        record = self.store.issue(owner, repo, number)
        comment = render.review_comment(self.store.snapshot("review_comments")[comment_id])
        payload = {"action": "created", "comment": comment, "pull_request": render.pull(record, simple=True),
                   **self._context(owner, repo, sender)}
        return self.deliver("pull_request_review_comment", payload)

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

    def _authorize_git(self, owner: str, repo: str, _username: str, password: str,
                       pushing: bool) -> tuple[int, dict[str, str]]:
        token = self.store.token(password)
        if token is None:
            return 401, {}
        record = self.store.repo(owner, repo)
        if record is None or not self.repo_path(owner, repo).is_dir():
            return 404, {}
        if record["installation_id"] != token["installation_id"]:
            return 401, {}
        if token["repositories"] is not None and repo not in token["repositories"]:
            return 404, {}
        contents = token["permissions"].get("contents")
        if contents not in ("read", "write") or (pushing and (contents != "write" or record["archived"])):
            return 403, {}
        return 200, {"STANDIN_WORKFLOWS": token["permissions"].get("workflows", "none")}

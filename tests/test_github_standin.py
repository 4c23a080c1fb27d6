"""Contract tests of the GitHub stand-in: every route through the real githubkit client, real git over
smart HTTP, and signed webhooks to a real receiving server, all on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import githubkit.exception
import githubkit.webhooks
import httpx
import jwt
import pytest
from fastapi import FastAPI, Request, Response
from githubkit import (
    AppAuthStrategy,
    AppInstallationAuthStrategy,
    GitHub,
    TokenAuthStrategy,
    UnauthAuthStrategy,
)
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed
from githubkit_schemas.latest.models import (
    FullRepository,
    Installation,
    InstallationToken,
    Integration,
    Issue,
    IssueComment,
    PullRequest,
    PullRequestReviewComment,
    PullRequestSimple,
    Reaction,
    RepositoryCollaboratorPermission,
    WebhookIssueCommentCreated,
    WebhookIssuesLabeled,
    WebhookPullRequestReviewCommentCreated,
    WebhookPullRequestReviewSubmitted,
)

from bot.dev.github.standin import GitHubStandin, generate_private_key_pem
from bot.dev.serving import ThreadedServer
from bot.outside.tls import tls_context
from webhooks import signature

APP_ID = 4242
SECRET = "s3cret-for-tests"
OWNER, REPO = "octo", "demo"
# GitHub's installation tokens from 2026-04: ghs_<app id>_<a JWT>.
JWT_TOKEN = rf"ghs_{APP_ID}_[\w-]+\.[\w-]+\.[\w-]+"


@pytest.fixture(scope="module")
def app_key() -> str:
    return generate_private_key_pem()


@contextmanager
def serve(app):
    """Run an ASGI app under uvicorn on an ephemeral port of 127.0.0.1; yields its base URL."""
    with ThreadedServer(app, name="test") as server:
        yield server.url


class Receiver:
    """A tiny webhook receiver that checks X-Hub-Signature-256 with hmac and records every delivery."""

    def __init__(self, secret: str):
        self.secret = secret
        self.received: list[dict] = []
        self.app = FastAPI()
        self.app.post("/webhook")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        valid = signature.is_valid(self.secret, body, request.headers.get("x-hub-signature-256"))
        self.received.append({"headers": dict(request.headers), "body": body, "valid": valid})
        return Response(status_code=202 if valid else 401)


@pytest.fixture(scope="module")
def receiving_server():
    hook = Receiver(SECRET)
    with serve(hook.app) as url:
        hook.url = f"{url}/webhook"
        yield hook


@pytest.fixture
def receiver(receiving_server: Receiver) -> Receiver:
    receiving_server.received.clear()
    return receiving_server


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a - b\n")
    (src / "README.md").write_text("# demo\n")
    return src


@pytest.fixture
def standin(tmp_path: Path, app_key: str, source: Path, receiver: Receiver):
    with GitHubStandin(tmp_path / "github", app_id=APP_ID, app_private_key_pem=app_key,
                       webhook_url=receiver.url, webhook_secret=SECRET) as github:
        github.create_repo(OWNER, REPO, source)
        yield github


def app_client(standin: GitHubStandin, key: str | None = None) -> GitHub:
    # A private cache: githubkit's default one is process-wide and keyed only by app id, so a
    # JWT or token cached for one stand-in would be sent to the next.
    return GitHub(AppAuthStrategy(APP_ID, key or standin.app_private_key_pem), base_url=standin.api_url,
                  auto_retry=False, cache_strategy=MemCacheStrategy(), ssl_verify=tls_context())


def installation_client(standin: GitHubStandin, installation_id: int = 1) -> GitHub:
    return app_client(standin).with_auth(
        AppInstallationAuthStrategy(APP_ID, standin.app_private_key_pem, installation_id))


def raw(standin: GitHubStandin, method: str, path: str, body: dict) -> int:
    """Status of one request made with plain httpx and a fresh installation token."""
    headers = {"Authorization": f"token {standin.installation_token()}"}
    return httpx.request(method, standin.api_url + path, json=body, headers=headers).status_code


def status_of(call) -> int:
    with pytest.raises(RequestFailed) as failure:
        call()
    return failure.value.response.status_code


# App routes


def test_app_routes_answer_a_valid_jwt(standin: GitHubStandin):
    gh = app_client(standin)
    app = gh.rest.apps.get_authenticated().parsed_data
    assert isinstance(app, Integration) and app.id == APP_ID and app.slug == "agentcoder"
    installation = gh.rest.apps.get_repo_installation(OWNER, REPO).parsed_data
    assert isinstance(installation, Installation) and installation.id == 1 and installation.app_id == APP_ID
    assert installation.account.login == OWNER
    token = gh.rest.apps.create_installation_access_token(installation.id).parsed_data
    assert isinstance(token, InstallationToken) and re.fullmatch(JWT_TOKEN, token.token)
    expires = datetime.strptime(token.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)
    assert status_of(lambda: gh.rest.apps.get_repo_installation(OWNER, "nope")) == 404
    assert status_of(lambda: gh.rest.apps.create_installation_access_token(99)) == 404


def test_app_routes_refuse_a_missing_or_wrong_jwt(standin: GitHubStandin, app_key: str):
    anonymous = GitHub(UnauthAuthStrategy(), base_url=standin.api_url, auto_retry=False)
    assert status_of(anonymous.rest.apps.get_authenticated) == 401
    wrong_key = app_client(standin, generate_private_key_pem())
    assert status_of(wrong_key.rest.apps.get_authenticated) == 401

    def bearer(claims: dict, key: str = app_key) -> int:
        # Signed over raw JSON: PyJWT's encode() refuses the integer `iss` other clients send.
        token = jwt.api_jws.encode(json.dumps(claims).encode(), key, algorithm="RS256")
        return httpx.get(f"{standin.api_url}/app", headers={"Authorization": f"Bearer {token}"}).status_code

    now = int(time.time())
    assert bearer({"iss": str(APP_ID), "iat": now - 60, "exp": now + 540}) == 200
    assert bearer({"iss": APP_ID, "iat": now - 60, "exp": now + 540}) == 200  # GitHub takes an integer too
    assert bearer({"iss": "999", "iat": now - 60, "exp": now + 540}) == 401
    assert bearer({"iss": str(APP_ID), "iat": now - 700, "exp": now - 100}) == 401  # expired
    assert bearer({"iss": str(APP_ID), "iat": now - 60, "exp": now + 3600}) == 401  # lives too long
    assert bearer({"iss": str(APP_ID), "iat": now - 60}) == 401  # no expiry
    hs256 = jwt.encode({"iss": str(APP_ID), "iat": now, "exp": now + 60}, "a-shared-secret-of-32-bytes-long!", algorithm="HS256")
    assert httpx.get(f"{standin.api_url}/app", headers={"Authorization": f"Bearer {hs256}"}).status_code == 401
    # An installation token is not an App credential.
    token = standin.installation_token()
    assert httpx.get(f"{standin.api_url}/app", headers={"Authorization": f"token {token}"}).status_code == 401


# Installation routes


def test_installation_routes_check_the_token(standin: GitHubStandin, source: Path):
    standin.create_repo("other-org", "tool", source, installation_id=2)

    def get_repo(authorization: str | None, repo: str = f"{OWNER}/{REPO}") -> int:
        headers = {"Authorization": authorization} if authorization else {}
        return httpx.get(f"{standin.api_url}/repos/{repo}", headers=headers).status_code

    good = standin.installation_token(1)
    assert get_repo(f"token {good}") == 200
    assert get_repo(f"Bearer {good}") == 200
    assert get_repo(None) == 401
    assert get_repo("token ghs_" + "x" * 36) == 401
    assert get_repo(f"token {standin.installation_token(1, expires_in=-1)}") == 401
    assert get_repo(f"token {standin.installation_token(2)}") == 404  # another installation's token: hidden
    assert get_repo(f"token {standin.installation_token(2)}", "other-org/tool") == 200
    assert get_repo(f"token {good}", f"{OWNER}/missing") == 404
    app_jwt = jwt.encode({"iss": str(APP_ID), "iat": int(time.time()) - 60, "exp": int(time.time()) + 500},
                         standin.app_private_key_pem, algorithm="RS256")
    assert get_repo(f"Bearer {app_jwt}") == 401
    with_token = GitHub(TokenAuthStrategy(good), base_url=standin.api_url, auto_retry=False)
    assert with_token.rest.repos.get(OWNER, REPO).parsed_data.full_name == f"{OWNER}/{REPO}"
    # Keep the client in a name: githubkit's `.rest` holds only a weak reference to it.
    foreign = installation_client(standin, 2)
    assert status_of(lambda: foreign.rest.repos.get(OWNER, REPO)) == 404


def test_repository_and_permissions(standin: GitHubStandin):
    gh = installation_client(standin)
    repo = gh.rest.repos.get(OWNER, REPO).parsed_data
    assert isinstance(repo, FullRepository)
    assert (repo.full_name, repo.default_branch, repo.private) == (f"{OWNER}/{REPO}", "main", True)
    assert repo.clone_url == standin.git_url(OWNER, REPO) == f"{standin.api_url}/{OWNER}/{REPO}.git"
    assert repo.owner.login == OWNER

    standin.set_permission(OWNER, REPO, "writer", "write")
    standin.set_permission(OWNER, REPO, "keeper", "maintain")
    standin.set_permission(OWNER, REPO, "reader", "read")
    expected = {OWNER: ("admin", "admin"), "writer": ("write", "write"), "keeper": ("write", "maintain"),
                "reader": ("read", "read"), "stranger": ("none", "none")}
    for login, (permission, role) in expected.items():
        answer = gh.rest.repos.get_collaborator_permission_level(OWNER, REPO, login).parsed_data
        assert isinstance(answer, RepositoryCollaboratorPermission)
        assert (answer.permission, answer.role_name, answer.user.login) == (permission, role, login)


def test_issue_comments_and_reactions(standin: GitHubStandin):
    number = standin.create_issue(OWNER, REPO, "add() subtracts", "add(1, 2) returns -1", user="alice")
    gh = installation_client(standin)
    issue = gh.rest.issues.get(OWNER, REPO, number).parsed_data
    assert isinstance(issue, Issue)
    assert (issue.number, issue.title, issue.body, issue.state, issue.locked) == (
        number, "add() subtracts", "add(1, 2) returns -1", "open", False)
    assert issue.user.login == "alice" and not issue.pull_request and issue.labels == []
    assert status_of(lambda: gh.rest.issues.get(OWNER, REPO, 999)) == 404

    created = gh.rest.issues.create_comment(OWNER, REPO, number, body="Working on it").parsed_data
    assert isinstance(created, IssueComment) and created.user.login == standin.bot_login == "agentcoder[bot]"
    assert created.user.type == "Bot" and created.body == "Working on it"
    updated = gh.rest.issues.update_comment(OWNER, REPO, created.id, body="Done").parsed_data
    assert isinstance(updated, IssueComment) and (updated.id, updated.body) == (created.id, "Done")
    for text in ("two", "three"):
        gh.rest.issues.create_comment(OWNER, REPO, number, body=text)
    listed = gh.rest.issues.list_comments(OWNER, REPO, number).parsed_data
    assert all(isinstance(comment, IssueComment) for comment in listed)
    assert [comment.body for comment in listed] == ["Done", "two", "three"]
    paged = gh.rest.paginate(gh.rest.issues.list_comments, owner=OWNER, repo=REPO, issue_number=number, per_page=2)
    assert [comment.body for comment in paged] == ["Done", "two", "three"]
    assert [c["body"] for c in standin.comments_on(OWNER, REPO, number)] == ["Done", "two", "three"]
    # githubkit validates request bodies itself, so the server's own checks are reached with plain httpx.
    assert raw(standin, "POST", f"/repos/{OWNER}/{REPO}/issues/{number}/comments", {}) == 422
    assert status_of(lambda: gh.rest.issues.update_comment(OWNER, REPO, 123456, body="x")) == 404

    on_issue = gh.rest.reactions.create_for_issue(OWNER, REPO, number, content="eyes")
    assert on_issue.status_code == 201 and isinstance(on_issue.parsed_data, Reaction)
    assert on_issue.parsed_data.content == "eyes" and on_issue.parsed_data.user.login == standin.bot_login
    again = gh.rest.reactions.create_for_issue(OWNER, REPO, number, content="eyes")
    assert again.status_code == 200 and again.parsed_data.id == on_issue.parsed_data.id
    on_comment = gh.rest.reactions.create_for_issue_comment(OWNER, REPO, created.id, content="rocket").parsed_data
    assert isinstance(on_comment, Reaction) and on_comment.content == "rocket"
    assert raw(standin, "POST", f"/repos/{OWNER}/{REPO}/issues/{number}/reactions", {"content": "wow"}) == 422
    assert [(r["subject"], r["subject_id"], r["content"]) for r in standin.reactions] == [
        ("issue", number, "eyes"), ("comment", created.id, "rocket")]
    assert gh.rest.issues.get(OWNER, REPO, number).parsed_data.comments == 3


# Git over smart HTTP


def git_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "bot",
            "GIT_AUTHOR_EMAIL": "bot@example.invalid", "GIT_COMMITTER_NAME": "bot",
            "GIT_COMMITTER_EMAIL": "bot@example.invalid", **extra}


def run_git(tmp_path: Path, *args: str, cwd: Path | None = None, check: bool = True,
            **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "credential.helper=", *args], cwd=cwd, env=git_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=60, check=check)


def basic_header(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def askpass(tmp_path: Path) -> Path:
    script = tmp_path / "askpass.sh"
    script.write_text('#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; *) echo "$GH_TOKEN" ;; esac\n')
    script.chmod(0o700)
    return script


def clone(standin: GitHubStandin, tmp_path: Path, token: str, repo: str = REPO) -> Path:
    checkout = tmp_path / "checkout"
    tmp_path.mkdir(parents=True, exist_ok=True)
    run_git(tmp_path, "-c", f"http.extraHeader={basic_header(token)}", "clone", "-q",
            standin.git_url(OWNER, repo), str(checkout))
    return checkout


def push_branch(standin: GitHubStandin, tmp_path: Path, branch: str, files: dict[str, bytes], *, repo: str = REPO,
                check: bool = True):
    """Clone, commit `files` on a new branch, push it with a token from GIT_ASKPASS; returns the commit sha
    (with check=False: the push's CompletedProcess)."""
    token = standin.installation_token()
    checkout = clone(standin, tmp_path, token, repo)
    run_git(tmp_path, "checkout", "-q", "-b", branch, cwd=checkout)
    for name, data in files.items():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes(data)
    run_git(tmp_path, "add", "-A", cwd=checkout)
    run_git(tmp_path, "commit", "-q", "-m", f"work on {branch}", cwd=checkout)
    pushed = run_git(tmp_path, "push", "-q", "origin", branch, cwd=checkout, GIT_ASKPASS=str(askpass(tmp_path)),
                     GH_TOKEN=token, check=check)
    if not check:
        return pushed
    return run_git(tmp_path, "rev-parse", "HEAD", cwd=checkout).stdout.strip()


def test_clone_commit_and_push_over_http_with_a_token(standin: GitHubStandin, tmp_path: Path):
    big = os.urandom(3 * 1024 * 1024 // 2)  # incompressible, so the push body really is over 1 MiB
    # A push over 1 MiB hangs under a WSGI server; run_git's deadline turns a hang into a failure.
    sha = push_branch(standin, tmp_path, "agentcoder/issue-1",
                      {"pkg/__init__.py": b"def add(a, b):\n    return a + b\n", "blob.bin": big})
    assert standin.branch_sha(OWNER, REPO, "agentcoder/issue-1") == sha
    assert standin.read_file(OWNER, REPO, "agentcoder/issue-1", "pkg/__init__.py").endswith("return a + b\n")
    assert standin.read_file(OWNER, REPO, "main", "pkg/__init__.py").endswith("return a - b\n")
    assert standin.read_file(OWNER, REPO, "main", "blob.bin") is None
    assert standin.branch_sha(OWNER, REPO, "nope") is None
    config = (tmp_path / "checkout" / ".git" / "config").read_text()
    assert "ghs_" not in config and "Authorization" not in config

    # A fresh clone sees the pushed branch and the big file byte for byte.
    again = tmp_path / "again"
    run_git(tmp_path, "-c", f"http.extraHeader={basic_header(standin.installation_token())}", "clone", "-q",
            "-b", "agentcoder/issue-1", standin.git_url(OWNER, REPO), str(again))
    assert (again / "blob.bin").read_bytes() == big


def test_git_refuses_missing_wrong_and_foreign_credentials(standin: GitHubStandin, tmp_path: Path, source: Path):
    url = standin.git_url(OWNER, REPO)
    info_refs = f"{url}/info/refs?service=git-upload-pack"
    refused = httpx.get(info_refs)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    wrong = run_git(tmp_path, "-c", f"http.extraHeader={basic_header('ghs_' + 'x' * 36)}", "clone", "-q", url,
                    str(tmp_path / "wrong"), check=False)
    assert wrong.returncode != 0 and not (tmp_path / "wrong" / ".git").exists()
    none = run_git(tmp_path, "clone", "-q", url, str(tmp_path / "none"), check=False)
    assert none.returncode != 0
    standin.create_repo("other-org", "tool", source, installation_id=2)
    foreign = standin.installation_token(2)
    assert httpx.get(info_refs, auth=("x-access-token", foreign)).status_code == 401
    assert httpx.get(info_refs, auth=("x-access-token", standin.installation_token())).status_code == 200
    missing = f"{standin.git_url(OWNER, 'missing')}/info/refs?service=git-upload-pack"
    assert httpx.get(missing, auth=("x-access-token", standin.installation_token())).status_code == 404


# Pull requests


def test_pull_requests(standin: GitHubStandin, tmp_path: Path):
    issue_number = standin.create_issue(OWNER, REPO, "add() subtracts", "fix it")
    head_sha = push_branch(standin, tmp_path, "agentcoder/issue-1", {"pkg/__init__.py": b"def add(a, b):\n    return a + b\n"})
    gh = installation_client(standin)

    created = gh.rest.pulls.create(OWNER, REPO, title="Fix add()", head="agentcoder/issue-1", base="main",
                                   body=f"Fixes #{issue_number}", draft=True)
    pull = created.parsed_data
    assert created.status_code == 201 and isinstance(pull, PullRequest)
    assert pull.number == issue_number + 1  # issues and PRs share one sequence
    assert (pull.title, pull.body, pull.draft, pull.state) == ("Fix add()", f"Fixes #{issue_number}", True, "open")
    assert (pull.head.ref, pull.head.sha, pull.base.ref) == ("agentcoder/issue-1", head_sha, "main")
    assert pull.user.login == standin.bot_login
    assert (pull.commits, pull.additions, pull.deletions, pull.changed_files) == (1, 1, 1, 1)
    as_issue = gh.rest.issues.get(OWNER, REPO, pull.number).parsed_data
    assert as_issue.pull_request and as_issue.pull_request.url.endswith(f"/pulls/{pull.number}")
    assert status_of(lambda: gh.rest.pulls.get(OWNER, REPO, issue_number)) == 404

    fetched = gh.rest.pulls.get(OWNER, REPO, pull.number).parsed_data
    assert isinstance(fetched, PullRequest) and fetched.id == pull.id
    updated = gh.rest.pulls.update(OWNER, REPO, pull.number, body="Fixes #1\n\n<details>log</details>").parsed_data
    assert isinstance(updated, PullRequest) and updated.body.endswith("</details>") and updated.title == "Fix add()"
    assert standin.pulls[(OWNER, REPO, pull.number)]["body"] == updated.body

    listed = gh.rest.pulls.list(OWNER, REPO, state="open", head=f"{OWNER}:agentcoder/issue-1").parsed_data
    assert [p.number for p in listed] == [pull.number] and isinstance(listed[0], PullRequestSimple)
    assert gh.rest.pulls.list(OWNER, REPO, state="open", head=f"{OWNER}:other").parsed_data == []

    assert status_of(lambda: gh.rest.pulls.create(OWNER, REPO, title="again", head="agentcoder/issue-1",
                                                  base="main")) == 422  # one open PR per head
    assert status_of(lambda: gh.rest.pulls.create(OWNER, REPO, title="x", head="no-such-branch",
                                                  base="main")) == 422
    assert len(standin.pulls) == 1

    standin.add_review_comment(OWNER, REPO, pull.number, "Please keep the docstring", "alice",
                               path="pkg/__init__.py", line=2)
    reviews = gh.rest.pulls.list_review_comments(OWNER, REPO, pull.number).parsed_data
    assert len(reviews) == 1 and isinstance(reviews[0], PullRequestReviewComment)
    assert (reviews[0].body, reviews[0].path, reviews[0].line, reviews[0].user.login, reviews[0].commit_id) == (
        "Please keep the docstring", "pkg/__init__.py", 2, "alice", head_sha)

    closed = gh.rest.pulls.update(OWNER, REPO, pull.number, state="closed").parsed_data
    assert closed.state == "closed" and closed.closed_at is not None
    assert gh.rest.pulls.list(OWNER, REPO, state="open").parsed_data == []
    assert [p.number for p in gh.rest.pulls.list(OWNER, REPO, state="closed").parsed_data] == [pull.number]


# Webhooks


def test_labelling_delivers_a_signed_issues_event(standin: GitHubStandin, receiver: Receiver):
    number = standin.create_issue(OWNER, REPO, "add() subtracts", "fix it", user="alice")
    delivery = standin.label_issue(OWNER, REPO, number, "agentcoder", sender="maintainer")
    assert delivery.status_code == 202 and delivery.event == "issues"

    seen = receiver.received[-1]
    assert seen["valid"]
    headers = seen["headers"]
    assert headers["x-github-event"] == "issues" and headers["x-github-delivery"] == delivery.delivery_id
    assert headers["content-type"] == "application/json" and headers["user-agent"].startswith("GitHub-Hookshot/")
    assert headers["x-github-hook-id"].isdigit()
    assert headers["x-hub-signature"] == signature.sign_legacy(SECRET, seen["body"])
    assert githubkit.webhooks.verify(SECRET, seen["body"], headers["x-hub-signature-256"])

    # The payload must parse as GitHub's own model of this event (the specific model: githubkit's
    # parse_obj compiles the union of every `issues` action, a second of CPU, to pick the same one).
    event = WebhookIssuesLabeled.model_validate_json(seen["body"])
    assert (event.action, event.label.name, event.issue.number, event.issue.title) == (
        "labeled", "agentcoder", number, "add() subtracts")
    assert event.sender.login == "maintainer" and event.installation.id == 1
    assert event.repository.full_name == f"{OWNER}/{REPO}" and event.repository.default_branch == "main"
    assert [label.name for label in event.issue.labels] == ["agentcoder"]
    assert standin.issues[(OWNER, REPO, number)]["labels"] == ["agentcoder"]
    gh = installation_client(standin)
    assert [label.name for label in gh.rest.issues.get(OWNER, REPO, number).parsed_data.labels] == ["agentcoder"]


def test_comment_on_a_pull_request_delivers_issue_comment(standin: GitHubStandin, receiver: Receiver,
                                                          tmp_path: Path):
    push_branch(standin, tmp_path, "agentcoder/issue-1", {"NEW.md": b"new\n"})
    gh = installation_client(standin)
    pull = gh.rest.pulls.create(OWNER, REPO, title="Fix", head="agentcoder/issue-1", base="main").parsed_data
    delivery = standin.comment(OWNER, REPO, pull.number, "/agentcoder retry keep it short", sender="maintainer")
    assert delivery.status_code == 202 and delivery.event == "issue_comment"
    event = WebhookIssueCommentCreated.model_validate_json(receiver.received[-1]["body"])
    assert event.issue.number == pull.number and event.issue.pull_request
    assert event.comment.body == "/agentcoder retry keep it short" and event.comment.user.login == "maintainer"
    assert event.sender.type == "User"

    bot_delivery = standin.comment(OWNER, REPO, pull.number, "/agentcoder retry", sender="other[bot]",
                                   sender_type="Bot")
    bot_event = WebhookIssueCommentCreated.model_validate(bot_delivery.payload)
    assert bot_event.sender.type == "Bot" and bot_event.comment.user.type == "Bot"
    assert [c["user"] for c in standin.comments_on(OWNER, REPO, pull.number)] == ["maintainer", "other[bot]"]

    standin.label_issue(OWNER, REPO, pull.number, "agentcoder", sender="maintainer")
    labelled = gh.rest.pulls.get(OWNER, REPO, pull.number).parsed_data
    assert [label.name for label in labelled.labels] == ["agentcoder"] and labelled.comments == 2
    listed = gh.rest.pulls.list(OWNER, REPO).parsed_data
    assert [label.name for label in listed[0].labels] == ["agentcoder"]


def test_raw_deliveries_forged_and_redelivered(standin: GitHubStandin, receiver: Receiver):
    number = standin.create_issue(OWNER, REPO, "t", "b")
    first = standin.label_issue(OWNER, REPO, number, "agentcoder", sender="maintainer")
    forged = standin.deliver("issues", first.payload, signature="sha256=" + "0" * 64)
    assert forged.status_code == 401 and not receiver.received[-1]["valid"]
    wrong_secret = standin.deliver("issues", first.payload, secret="not-the-secret")
    assert wrong_secret.status_code == 401
    redelivery = standin.deliver("issues", first.payload, delivery_id=first.delivery_id)
    assert redelivery.status_code == 202 and redelivery.delivery_id == first.delivery_id
    assert receiver.received[-1]["headers"]["x-github-delivery"] == first.delivery_id
    assert len(receiver.received) == 4


def test_standin_without_a_key_makes_one(tmp_path: Path, source: Path):
    with GitHubStandin(tmp_path / "gh", app_id=7, app_slug="helper") as github:
        assert "PRIVATE KEY" in github.app_private_key_pem and github.bot_login == "helper[bot]"
        github.create_repo("me", "r", source)
        gh = GitHub(AppAuthStrategy(7, github.app_private_key_pem), base_url=github.api_url, auto_retry=False,
                    cache_strategy=MemCacheStrategy())
        installation = gh.rest.apps.get_repo_installation("me", "r").parsed_data
        as_installation = gh.with_auth(gh.auth.as_installation(installation.id))
        repo = as_installation.rest.repos.get("me", "r").parsed_data
        assert repo.clone_url == github.git_url("me", "r")
        with pytest.raises(RuntimeError, match="webhook_url"):
            github.deliver("ping", {})


# Review events, Git Data, rules, faults, scoping


def test_review_events_parse_as_githubs_webhook_models(standin: GitHubStandin, receiver: Receiver, tmp_path: Path):
    push_branch(standin, tmp_path, "agentcoder/issue-1", {"pkg/__init__.py": b"def add(a, b):\n    return a + b\n"})
    gh = installation_client(standin)
    pull = gh.rest.pulls.create(OWNER, REPO, title="t", head="agentcoder/issue-1", base="main").parsed_data
    standin.set_permission(OWNER, REPO, "maint", "write")
    review = standin.review(OWNER, REPO, pull.number, "/agentcoder retry", sender="maint")
    comment = standin.review_comment(OWNER, REPO, pull.number, "/agentcoder retry here", sender="maint",
                                     path="pkg/__init__.py", line=2)
    assert [r["valid"] for r in receiver.received] == [True, True]
    parsed = WebhookPullRequestReviewSubmitted.model_validate(review.payload)
    assert parsed.action == "submitted" and parsed.review.body == "/agentcoder retry"
    parsed = WebhookPullRequestReviewCommentCreated.model_validate(comment.payload)
    assert parsed.comment.path == "pkg/__init__.py" and parsed.pull_request.number == pull.number
    reaction = gh.rest.reactions.create_for_pull_request_review_comment(OWNER, REPO, parsed.comment.id, content="eyes")
    assert isinstance(reaction.parsed_data, Reaction)


def test_drafts_body_limits_and_archived_repositories_answer_as_github(standin: GitHubStandin, tmp_path: Path):
    standin.create_repo(OWNER, "free", tmp_path / "src", plan="free")
    standin.create_repo(OWNER, "open-free", tmp_path / "src", plan="free", private=False)
    gh = installation_client(standin)
    for name in ("free", "open-free"):
        push_branch(standin, tmp_path / name, "feature", {"x.py": b"X = 1\n"}, repo=name)
    with pytest.raises(RequestFailed) as failure:
        gh.rest.pulls.create(OWNER, "free", title="t", head="feature", base="main", draft=True)
    assert failure.value.response.status_code == 422
    assert failure.value.response.json()["errors"][0]["message"] == "Draft pull requests are not supported in this repository."
    assert gh.rest.pulls.create(OWNER, "open-free", title="t", head="feature", base="main", draft=True).parsed_data.draft
    number = standin.create_issue(OWNER, REPO, "t", "b")
    assert status_of(lambda: gh.rest.issues.create_comment(OWNER, REPO, number, body="x" * 65537)) == 422
    assert gh.rest.issues.create_comment(OWNER, REPO, number, body="x" * 65536).status_code == 201
    standin.store.update_repo(OWNER, REPO, archived=True)
    assert gh.rest.repos.get(OWNER, REPO).parsed_data.archived is True
    with pytest.raises(RequestFailed) as failure:
        gh.rest.issues.create_comment(OWNER, REPO, number, body="hi")
    assert failure.value.response.json()["message"] == "Repository was archived so is read-only."


def test_tokens_are_scoped_to_repositories_and_permissions(standin: GitHubStandin, tmp_path: Path):
    standin.create_repo(OWNER, "other", tmp_path / "src")
    app = app_client(standin)
    token = app.rest.apps.create_installation_access_token(
        1, repositories=[REPO], permissions={"issues": "read", "metadata": "read"}).parsed_data
    assert token.repository_selection == "selected" and [r.name for r in token.repositories] == [REPO]
    gh = GitHub(TokenAuthStrategy(token.token), base_url=standin.api_url, auto_retry=False,
                cache_strategy=MemCacheStrategy())
    number = standin.create_issue(OWNER, REPO, "t", "b")
    assert gh.rest.issues.get(OWNER, REPO, number).parsed_data.number == number
    assert status_of(lambda: gh.rest.repos.get(OWNER, "other")) == 404  # not visible to this token
    assert status_of(lambda: gh.rest.issues.create_comment(OWNER, REPO, number, body="x")) == 403  # read only
    assert status_of(lambda: app.rest.apps.create_installation_access_token(
        1, permissions={"administration": "write"})) == 422
    url = standin.git_url(OWNER, REPO) + "/info/refs?service=git-receive-pack"
    assert httpx.get(url, auth=("x-access-token", token.token)).status_code == 403  # no contents permission


def test_users_and_injected_faults(standin: GitHubStandin):
    gh = installation_client(standin)
    bot = gh.rest.users.get_by_username(standin.bot_login).parsed_data
    assert bot.login == "agentcoder[bot]" and bot.type == "Bot"
    assert status_of(lambda: gh.rest.users.get_by_username("nobody-at-all")) == 404
    standin.inject("GET", f"/repos/{OWNER}/{REPO}", "secondary", retry_after_s=7)
    with pytest.raises(githubkit.exception.SecondaryRateLimitExceeded) as limited:
        gh.rest.repos.get(OWNER, REPO)
    assert limited.value.retry_after == timedelta(seconds=7)
    standin.inject("GET", f"/repos/{OWNER}/{REPO}", "primary", retry_after_s=30)
    with pytest.raises(githubkit.exception.PrimaryRateLimitExceeded):
        gh.rest.repos.get(OWNER, REPO)
    standin.inject("GET", f"/repos/{OWNER}/{REPO}", 502)
    assert status_of(lambda: gh.rest.repos.get(OWNER, REPO)) == 502
    assert gh.rest.repos.get(OWNER, REPO).parsed_data.name == REPO  # each fault answers once


def test_pushes_touching_workflows_need_the_workflows_permission(standin: GitHubStandin, tmp_path: Path):
    done = push_branch(standin, tmp_path, "ci", {".github/workflows/ci.yml": b"on: push\n"}, check=False)
    assert done.returncode != 0 and "without `workflows` permission" in done.stderr
    assert standin.branch_sha(OWNER, REPO, "ci") is None

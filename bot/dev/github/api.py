"""The stand-in's REST routes, with authentication checked the way GitHub checks it."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from fastapi import Body, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.dev.github import bare
from bot.dev.github.render import APP_PERMISSIONS, Renderer
from bot.dev.github.store import REACTIONS, Store

DOCS = "https://docs.github.com/rest"
TOKEN_TTL = timedelta(hours=1)
# GitHub refuses App JWTs that live longer than ten minutes; allow a little clock drift.
MAX_JWT_LIFETIME_S = 600 + 60
AUTH_SCHEME = re.compile(r"^(?:token|bearer)\s+(\S+)$", re.IGNORECASE)
# GitHub's limit on issue, comment and pull request bodies.
MAX_BODY = 65536
SECONDARY_RATE_LIMIT = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                        "If you reach out to GitHub Support for help, please include the request ID 0000:1111.")
ARCHIVED = "Repository was archived so is read-only."
NO_DRAFTS = "Draft pull requests are not supported in this repository."
NOT_ACCESSIBLE = "Resource not accessible by integration"
# What each kind of route needs of an installation token, as GitHub's permission names and levels.
LEVELS = {"read": 1, "write": 2, "admin": 3}


@dataclass
class Fault:
    """An answer the stand-in gives instead of the real one, `times` times, to requests matching method and path.

    kind: "secondary" (403 + retry-after), "primary" (403, x-ratelimit-remaining 0 + reset), or an HTTP
    status (5xx); `applied` does the work first and then answers the error (a write GitHub made but
    whose answer was lost).
    """

    method: str
    path: str  # a regular expression matched against the whole path
    kind: str | int
    times: int = 1
    retry_after_s: int = 1
    applied: bool = False
    hits: int = 0


class Faults:
    """The faults injected on demand, consumed as they are answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Inject a fault."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault matching this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.hits < fault.times and fault.method.upper() == method.upper() and re.fullmatch(fault.path, path):
                    fault.hits += 1
                    return fault
        return None

    def answer(self, fault: Fault) -> JSONResponse:
        """The response GitHub gives for this fault."""
        if fault.kind == "secondary":
            response = error_response(403, SECONDARY_RATE_LIMIT)
            response.headers["retry-after"] = str(fault.retry_after_s)
        elif fault.kind == "primary":
            response = error_response(403, "API rate limit exceeded for installation ID 1.")
            response.headers.update({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                                     "x-ratelimit-used": "5000",
                                     "x-ratelimit-reset": str(int(time.time()) + fault.retry_after_s)})
        else:
            status = int(fault.kind)
            response = error_response(status, "Server Error" if status >= 500 else "Error")
        return response


class ApiError(Exception):
    """An error answer in GitHub's shape: {"message", "documentation_url", "status"[, "errors"]}."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def error_response(status: int, message: str, errors: list[dict] | None = None) -> JSONResponse:
    """GitHub's error body."""
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def bearer_credential(request: Request) -> str | None:
    """The credential of an `Authorization: token X` or `Bearer X` header."""
    match = AUTH_SCHEME.match(request.headers.get("authorization", "").strip())
    return match.group(1) if match else None


def query_int(request: Request, name: str, default: int) -> int:
    """An integer query parameter; GitHub falls back to the default on junk."""
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else default


def paginate(request: Request, response: Response, items: list) -> list:
    """One page of `items` per `per_page`/`page`, with a Link header to the next page as GitHub sends."""
    per_page = min(max(query_int(request, "per_page", 30), 1), 100)
    page = max(query_int(request, "page", 1), 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    if page * per_page < len(items):
        following = request.url.include_query_params(page=page + 1, per_page=per_page)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return chunk


def build_api(store: Store, render: Renderer, *, app_id: int, public_key_pem: str, bot_login: str,
              repo_path, faults: Faults | None = None, jwt_tokens: bool = True) -> FastAPI:
    """The FastAPI app serving the REST routes the GitHub App uses."""
    api = FastAPI(title="GitHub stand-in", openapi_url=None, docs_url=None, redoc_url=None)
    faults = faults or Faults()

    @api.middleware("http")
    async def injected(request: Request, call_next):
        fault = faults.take(request.method, request.url.path)
        if fault is None:
            return await call_next(request)
        if fault.applied:
            await call_next(request)
        return faults.answer(fault)

    @api.exception_handler(ApiError)
    async def github_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.errors)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "Not Found" if exc.status_code == 404 else str(exc.detail))

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return error_response(400, "Problems parsing JSON")
        return error_response(422, "Validation Failed", [{"code": "invalid", "message": str(exc.errors())[:300]}])

    @api.middleware("http")
    async def no_cache(request: Request, call_next):
        # Keep clients' HTTP caches (githubkit uses hishel) from serving stale state.
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        return response

    def app_jwt(request: Request) -> None:
        credential = bearer_credential(request)
        if credential is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(credential, public_key_pem, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"], "verify_iss": False}, leeway=30)
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                   "future time at which the assertion expires") from None
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        if str(claims["iss"]) != str(app_id):
            raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
        if claims["exp"] - claims["iat"] > MAX_JWT_LIFETIME_S:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")

    def installation_repo(owner: str, repo: str, request: Request, need: tuple[str, str] | None = None) -> dict:
        """The repository, when the request's token may see it (404 otherwise) and holds `need` (403)."""
        credential = bearer_credential(request)
        token = store.token(credential) if credential else None
        if token is None:
            raise ApiError(401, "Bad credentials")
        record = store.repo(owner, repo)
        if record is None or record["installation_id"] != token["installation_id"]:
            raise ApiError(404, "Not Found")
        if token["repositories"] is not None and repo not in token["repositories"]:
            raise ApiError(404, "Not Found")  # GitHub hides what a token may not see
        if need is not None:
            scope, level = need
            if LEVELS.get(token["permissions"].get(scope, ""), 0) < LEVELS[level]:
                raise ApiError(403, NOT_ACCESSIBLE)
            if level != "read" and record["archived"]:
                raise ApiError(403, ARCHIVED)
        request.state.token = token
        return record

    def bounded_body(value: str | None, resource: str) -> str | None:
        if value is not None and len(value) > MAX_BODY:
            raise ApiError(422, "Validation Failed", [{"resource": resource, "code": "custom", "field": "body",
                              "message": f"body is too long (maximum is {MAX_BODY} characters)"}])
        return value

    def issue_or_404(owner: str, repo: str, number: int) -> dict:
        record = store.issue(owner, repo, number)
        if record is None:
            raise ApiError(404, "Not Found")
        return record

    def pull_or_404(owner: str, repo: str, number: int) -> dict:
        record = issue_or_404(owner, repo, number)
        if "pull" not in record:
            raise ApiError(404, "Not Found")
        return record

    def comment_or_404(owner: str, repo: str, comment_id: int) -> dict:
        record = store.comment(owner, repo, comment_id)
        if record is None:
            raise ApiError(404, "Not Found")
        return record

    def text_field(payload: dict, key: str, *, required: bool = False) -> str | None:
        value = payload.get(key)
        if value is None and required:
            raise ApiError(422, "Invalid request.\n\n\"%s\" wasn't supplied." % key)
        if value is not None and not isinstance(value, str):
            raise ApiError(422, f"Invalid request.\n\nFor '{key}', {value!r} is not a string.")
        return value

    # App routes (JWT)

    @api.get("/app", dependencies=[Depends(app_jwt)])
    def get_app() -> dict:
        return render.app()

    @api.get("/repos/{owner}/{repo}/installation", dependencies=[Depends(app_jwt)])
    def get_repo_installation(owner: str, repo: str) -> dict:
        record = store.repo(owner, repo)
        if record is None:
            raise ApiError(404, "Not Found")
        return render.installation(store.installation(record["installation_id"]))

    @api.post("/app/installations/{installation_id}/access_tokens", dependencies=[Depends(app_jwt)],
              status_code=201)
    def create_access_token(installation_id: int, payload: dict = Body(default_factory=dict)) -> dict:
        if store.installation(installation_id) is None:
            raise ApiError(404, "Not Found")
        permissions = payload.get("permissions") or APP_PERMISSIONS
        for scope, level in permissions.items():
            if LEVELS.get(APP_PERMISSIONS.get(scope, ""), 0) < LEVELS.get(level, 9):
                raise ApiError(422, "The permissions requested are not granted to this installation.")
        names = payload.get("repositories")
        if names is not None:
            installed = {name for (owner, name), record in store.snapshot("repos").items()
                         if record["installation_id"] == installation_id}
            if not isinstance(names, list) or not set(names) <= installed:
                raise ApiError(422, "There is at least one repository that does not exist or is not accessible "
                                       "to the parent installation.")
        token = store.issue_token(installation_id, TOKEN_TTL, permissions, names, app_id=app_id,
                                  jwt_shaped=jwt_tokens)
        answer = {"token": token["token"], "expires_at": token["expires_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "permissions": token["permissions"], "repository_selection": "selected" if names else "all"}
        if names:
            answer["repositories"] = [render.repository(record["owner"], record["name"])
                                      for (owner, name), record in store.snapshot("repos").items() if name in names
                                      and record["installation_id"] == installation_id]
        return answer

    @api.post("/app-manifests/{code}/conversions", status_code=201)
    def convert_manifest(code: str) -> dict:
        registration = store.take_conversion(code)
        if registration is None:
            raise ApiError(404, "Not Found")
        return registration

    @api.get("/users/{login}")
    def get_user(login: str) -> dict:
        if login not in store.snapshot("users"):
            raise ApiError(404, "Not Found")
        return render.public_user(login)

    # Installation routes (installation token)

    @api.get("/repos/{owner}/{repo}")
    def get_repo(owner: str, repo: str, request: Request) -> dict:
        installation_repo(owner, repo, request, ("metadata", "read"))
        return render.repository(owner, repo)

    @api.get("/repos/{owner}/{repo}/collaborators/{username}/permission")
    def get_permission(owner: str, repo: str, username: str, request: Request) -> dict:
        installation_repo(owner, repo, request, ("metadata", "read"))
        return render.collaborator_permission(owner, repo, username)

    @api.get("/repos/{owner}/{repo}/issues/{number}")
    def get_issue(owner: str, repo: str, number: int, request: Request) -> dict:
        installation_repo(owner, repo, request, ("issues", "read"))
        return render.issue(issue_or_404(owner, repo, number))

    @api.get("/repos/{owner}/{repo}/issues/{number}/comments")
    def list_comments(owner: str, repo: str, number: int, request: Request, response: Response) -> list:
        installation_repo(owner, repo, request, ("issues", "read"))
        issue_or_404(owner, repo, number)
        comments = [render.comment(record) for record in store.comments_on(owner, repo, number)]
        return paginate(request, response, comments)

    @api.post("/repos/{owner}/{repo}/issues/{number}/comments", status_code=201)
    def create_comment(owner: str, repo: str, number: int, request: Request,
                       payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("issues", "write"))
        issue = issue_or_404(owner, repo, number)
        if issue["locked"]:
            raise ApiError(403, "Unable to create comment because issue is locked.")
        body = bounded_body(text_field(payload, "body", required=True), "IssueComment")
        return render.comment(store.add_comment(owner, repo, number, body, bot_login))

    @api.get("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def get_comment(owner: str, repo: str, comment_id: int, request: Request) -> dict:
        installation_repo(owner, repo, request, ("issues", "read"))
        return render.comment(comment_or_404(owner, repo, comment_id))

    @api.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def update_comment(owner: str, repo: str, comment_id: int, request: Request,
                       payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("issues", "write"))
        comment = comment_or_404(owner, repo, comment_id)
        if comment["user"] != bot_login:
            raise ApiError(403, "Resource not accessible by integration")
        body = bounded_body(text_field(payload, "body", required=True), "IssueComment")
        return render.comment(store.update_comment(comment_id, body))

    def react(owner: str, repo: str, subject: str, subject_id: int, payload: dict) -> JSONResponse:
        content = payload.get("content")
        if content not in REACTIONS:
            raise ApiError(422, "Validation Failed",
                              [{"resource": "Reaction", "field": "content", "code": "invalid"}])
        reaction, created = store.add_reaction(owner, repo, subject, subject_id, content, bot_login)
        return JSONResponse(render.reaction(reaction), status_code=201 if created else 200)

    @api.post("/repos/{owner}/{repo}/issues/{number}/reactions")
    def react_to_issue(owner: str, repo: str, number: int, request: Request,
                       payload: dict = Body(default_factory=dict)) -> JSONResponse:
        installation_repo(owner, repo, request, ("issues", "write"))
        issue_or_404(owner, repo, number)
        return react(owner, repo, "issue", number, payload)

    @api.post("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
    def react_to_comment(owner: str, repo: str, comment_id: int, request: Request,
                         payload: dict = Body(default_factory=dict)) -> JSONResponse:
        installation_repo(owner, repo, request, ("issues", "write"))
        comment_or_404(owner, repo, comment_id)
        return react(owner, repo, "comment", comment_id, payload)

    @api.post("/repos/{owner}/{repo}/pulls/comments/{comment_id}/reactions")
    def react_to_review_comment(owner: str, repo: str, comment_id: int, request: Request,
                                payload: dict = Body(default_factory=dict)) -> JSONResponse:
        installation_repo(owner, repo, request, ("pull_requests", "write"))
        found = store.snapshot("review_comments").get(comment_id)
        if found is None or (found["owner"], found["repo"]) != (owner, repo):
            raise ApiError(404, "Not Found")
        return react(owner, repo, "review_comment", comment_id, payload)

    # Pull requests

    def branch_of(owner: str, ref: str, field: str) -> str:
        head_owner, _, branch = ref.rpartition(":")
        if head_owner and head_owner != owner:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": field, "code": "invalid"}])
        return branch

    @api.post("/repos/{owner}/{repo}/pulls", status_code=201)
    def create_pull(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        record_repo = installation_repo(owner, repo, request, ("pull_requests", "write"))
        title = text_field(payload, "title", required=True)
        head = branch_of(owner, text_field(payload, "head", required=True), "head")
        base = branch_of(owner, text_field(payload, "base", required=True), "base")
        path = repo_path(owner, repo)
        head_sha = bare.branch_sha(path, head)
        for field, sha in (("head", head_sha), ("base", bare.branch_sha(path, base))):
            if sha is None:
                raise ApiError(422, "Validation Failed",
                                  [{"resource": "PullRequest", "field": field, "code": "invalid"}])
        if head == base or head_sha == bare.branch_sha(path, base):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                          "message": f"No commits between {base} and {head}"}])
        for record in store.issues_of(owner, repo):
            if record.get("pull", {}).get("head") == head and record["state"] == "open":
                raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                  "message": f"A pull request already exists for {owner}:{head}."}])
        draft = bool(payload.get("draft", False))
        # Drafts: public repositories on every plan, private ones only on Team and Enterprise.
        if draft and record_repo["private"] and record_repo["plan"] in ("free", "pro"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                                          "message": NO_DRAFTS}])
        body = bounded_body(text_field(payload, "body"), "PullRequest")
        pull = {"head": head, "base": base, "draft": draft, "head_sha": head_sha}
        record = store.add_issue(owner, repo, title, body, bot_login, pull=pull)
        return render.pull(record)

    @api.get("/repos/{owner}/{repo}/pulls")
    def list_pulls(owner: str, repo: str, request: Request, response: Response, state: str = "open",
                   head: str | None = None, base: str | None = None) -> list:
        installation_repo(owner, repo, request, ("pull_requests", "read"))
        found = []
        for record in reversed(store.issues_of(owner, repo)):  # newest first, as GitHub sorts by default
            if "pull" not in record or (state != "all" and record["state"] != state):
                continue
            if head is not None and f"{owner}:{record['pull']['head']}" != head:
                continue
            if base is not None and record["pull"]["base"] != base:
                continue
            found.append(render.pull(record, simple=True))
        return paginate(request, response, found)

    @api.get("/repos/{owner}/{repo}/pulls/{number}")
    def get_pull(owner: str, repo: str, number: int, request: Request) -> dict:
        installation_repo(owner, repo, request, ("pull_requests", "read"))
        return render.pull(pull_or_404(owner, repo, number))

    @api.patch("/repos/{owner}/{repo}/pulls/{number}")
    def update_pull(owner: str, repo: str, number: int, request: Request,
                    payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("pull_requests", "write"))
        pull_or_404(owner, repo, number)
        changes: dict[str, Any] = {}
        for key in ("title", "body", "state", "base"):
            if key in payload:
                changes[key] = text_field(payload, key)
        bounded_body(changes.get("body"), "PullRequest")
        if changes.get("state") not in (None, "open", "closed"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "state", "code": "invalid"}])
        if "base" in changes and bare.branch_sha(repo_path(owner, repo), changes["base"]) is None:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        return render.pull(store.update_issue(owner, repo, number, **changes))

    @api.get("/repos/{owner}/{repo}/pulls/{number}/comments")
    def list_review_comments(owner: str, repo: str, number: int, request: Request, response: Response) -> list:
        installation_repo(owner, repo, request, ("pull_requests", "read"))
        pull_or_404(owner, repo, number)
        comments = [render.review_comment(record) for record in store.review_comments_on(owner, repo, number)]
        return paginate(request, response, comments)

    build_git_data(api, store, render, repo_path, installation_repo)
    return api


def build_git_data(api: FastAPI, store: Store, render: Renderer, repo_path, installation_repo) -> None:
    """The Git Data API: blobs, trees, commits and refs; commits made here are GitHub's, so signed."""

    def bare_of(owner: str, repo: str) -> Any:
        path = repo_path(owner, repo)
        if not any((path / "refs" / "heads").iterdir()) and not (path / "packed-refs").exists():
            raise ApiError(409, "Git Repository is empty.")
        return path

    def invalid(resource: str, field: str) -> ApiError:
        return ApiError(422, "Validation Failed", [{"resource": resource, "field": field, "code": "invalid"}])

    @api.post("/repos/{owner}/{repo}/git/blobs", status_code=201)
    def create_blob(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("contents", "write"))
        content, encoding = payload.get("content"), payload.get("encoding", "utf-8")
        if not isinstance(content, str) or encoding not in ("utf-8", "base64"):
            raise invalid("Blob", "content")
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        except binascii.Error:
            raise invalid("Blob", "content") from None
        sha = bare.write_blob(repo_path(owner, repo), data)
        return {"url": f"{render.base}/repos/{owner}/{repo}/git/blobs/{sha}", "sha": sha}

    @api.post("/repos/{owner}/{repo}/git/trees", status_code=201)
    def create_tree(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("contents", "write"))
        path = repo_path(owner, repo)
        base_tree = payload.get("base_tree")
        if base_tree is not None and bare.object_type(path, base_tree) != "tree":
            raise invalid("Tree", "base_tree")
        entries = payload.get("tree")
        if not isinstance(entries, list):
            raise invalid("Tree", "tree")
        token = request.state.token
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or \
                    entry.get("mode") not in ("100644", "100755", "120000", "040000", "160000"):
                raise invalid("Tree", "tree")
            if entry.get("sha") is not None and bare.object_type(path, entry["sha"]) is None:
                raise invalid("Tree", "tree.sha")
            if entry["path"].startswith(".github/workflows/") and token["permissions"].get("workflows") != "write":
                raise ApiError(403, f"refusing to allow a GitHub App to create or update workflow "
                                       f"`{entry['path']}` without `workflows` permission")
        sha = bare.write_tree(path, base_tree, entries)
        return render.git_tree(owner, repo, sha, bare.tree_entries(path, sha))

    @api.post("/repos/{owner}/{repo}/git/commits", status_code=201)
    def create_commit(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("contents", "write"))
        path = repo_path(owner, repo)
        message, tree, parents = payload.get("message"), payload.get("tree"), payload.get("parents", [])
        if not isinstance(message, str) or not isinstance(tree, str) or bare.object_type(path, tree) != "tree":
            raise invalid("Commit", "tree")
        if not isinstance(parents, list) or any(bare.object_type(path, p) != "commit" for p in parents):
            raise invalid("Commit", "parents")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        bot = render.store.user(f"{render.app_info['slug']}[bot]")
        identity = {"name": bot["login"], "email": f"{bot['id']}+{bot['login']}@users.noreply.github.com",
                    "date": stamp}
        custom = payload.get("author")
        author = {**identity, **custom} if isinstance(custom, dict) else identity
        # GitHub signs commits it makes for an App when no custom author or committer is given.
        sha = bare.write_commit(path, tree, parents, message, author, {**identity, "name": "GitHub",
                                                                        "email": "noreply@github.com"})
        if not isinstance(custom, dict) and not payload.get("committer"):
            store.mark_verified(sha)
            bare.mark_verified(path, sha)
        return render.git_commit(owner, repo, bare.read_commit(path, sha))

    @api.get("/repos/{owner}/{repo}/git/commits/{sha}")
    def get_commit(owner: str, repo: str, sha: str, request: Request) -> dict:
        installation_repo(owner, repo, request, ("contents", "read"))
        commit = bare.read_commit(repo_path(owner, repo), sha)
        if commit is None:
            raise ApiError(404, "Not Found")
        return render.git_commit(owner, repo, commit)

    @api.get("/repos/{owner}/{repo}/git/ref/{ref:path}")
    def get_ref(owner: str, repo: str, ref: str, request: Request) -> dict:
        installation_repo(owner, repo, request, ("contents", "read"))
        sha = bare.rev_parse(bare_of(owner, repo), f"refs/{ref}")
        if sha is None:
            raise ApiError(404, "Not Found")
        return render.git_ref(owner, repo, f"refs/{ref}", sha)

    def check_rules(owner: str, repo: str, request: Request, ref: str, old: str | None, new: str) -> None:
        path = repo_path(owner, repo)
        record = store.repo(owner, repo)
        if not record["signed_commits"]:
            return
        listed = bare.git(path, "rev-list", new, *(["--not", old] if old else ["--not", "--all"])).stdout.split()
        unsigned = [sha for sha in listed if not store.is_verified(sha)]
        if unsigned:
            raise ApiError(422, "Repository rule violations found\n\nCommits must have verified signatures.\n\n")

    def move_ref(owner: str, repo: str, request: Request, ref: str, sha: Any, force: bool, creating: bool) -> dict:
        path = repo_path(owner, repo)
        if not isinstance(sha, str) or bare.object_type(path, sha) != "commit":
            raise ApiError(422, "Object does not exist")
        old = bare.rev_parse(path, ref)
        if creating and old is not None:
            raise ApiError(422, "Reference already exists")
        if not creating and old is None:
            raise ApiError(422, "Reference does not exist")
        if old and not force and not bare.is_ancestor(path, old, sha):
            raise ApiError(422, "Update is not a fast forward")
        token = request.state.token
        if token["permissions"].get("workflows") != "write":
            for commit in bare.git(path, "rev-list", sha, "--not", "--all").stdout.split():
                touched = [p for p in bare.changed_paths(path, commit) if p.startswith(".github/workflows/")]
                if touched:
                    raise ApiError(403, f"refusing to allow a GitHub App to create or update workflow "
                                           f"`{touched[0]}` without `workflows` permission")
        check_rules(owner, repo, request, ref, old, sha)
        bare.set_ref(path, ref, sha)
        return render.git_ref(owner, repo, ref, sha)

    @api.post("/repos/{owner}/{repo}/git/refs", status_code=201)
    def create_ref(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("contents", "write"))
        ref = payload.get("ref")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name is invalid")
        return move_ref(owner, repo, request, ref, payload.get("sha"), False, True)

    @api.patch("/repos/{owner}/{repo}/git/refs/{ref:path}")
    def update_ref(owner: str, repo: str, ref: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request, ("contents", "write"))
        return move_ref(owner, repo, request, f"refs/{ref}", payload.get("sha"), bool(payload.get("force")), False)


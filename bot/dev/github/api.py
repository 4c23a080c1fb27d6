"""The stand-in's REST routes, with authentication checked the way GitHub checks it."""

from __future__ import annotations

import re
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
              repo_path) -> FastAPI:
    """The FastAPI app serving the REST routes the GitHub App uses."""
    api = FastAPI(title="GitHub stand-in", openapi_url=None, docs_url=None, redoc_url=None)

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

    def installation_repo(owner: str, repo: str, request: Request) -> dict:
        credential = bearer_credential(request)
        installation_id = store.token_installation(credential) if credential else None
        if installation_id is None:
            raise ApiError(401, "Bad credentials")
        record = store.repo(owner, repo)
        if record is None:
            raise ApiError(404, "Not Found")
        if record["installation_id"] != installation_id:
            raise ApiError(401, "Bad credentials")
        return record

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
        token = store.issue_token(installation_id, TOKEN_TTL, permissions)
        return {"token": token["token"], "expires_at": token["expires_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": token["permissions"], "repository_selection": "all"}

    # Installation routes (installation token)

    @api.get("/repos/{owner}/{repo}")
    def get_repo(owner: str, repo: str, request: Request) -> dict:
        installation_repo(owner, repo, request)
        return render.repository(owner, repo)

    @api.get("/repos/{owner}/{repo}/collaborators/{username}/permission")
    def get_permission(owner: str, repo: str, username: str, request: Request) -> dict:
        installation_repo(owner, repo, request)
        return render.collaborator_permission(owner, repo, username)

    @api.get("/repos/{owner}/{repo}/issues/{number}")
    def get_issue(owner: str, repo: str, number: int, request: Request) -> dict:
        installation_repo(owner, repo, request)
        return render.issue(issue_or_404(owner, repo, number))

    @api.get("/repos/{owner}/{repo}/issues/{number}/comments")
    def list_comments(owner: str, repo: str, number: int, request: Request, response: Response) -> list:
        installation_repo(owner, repo, request)
        issue_or_404(owner, repo, number)
        comments = [render.comment(record) for record in store.comments_on(owner, repo, number)]
        return paginate(request, response, comments)

    @api.post("/repos/{owner}/{repo}/issues/{number}/comments", status_code=201)
    def create_comment(owner: str, repo: str, number: int, request: Request,
                       payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request)
        issue = issue_or_404(owner, repo, number)
        if issue["locked"]:
            raise ApiError(403, "Unable to create comment because issue is locked.")
        body = text_field(payload, "body", required=True)
        return render.comment(store.add_comment(owner, repo, number, body, bot_login))

    @api.get("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def get_comment(owner: str, repo: str, comment_id: int, request: Request) -> dict:
        installation_repo(owner, repo, request)
        return render.comment(comment_or_404(owner, repo, comment_id))

    @api.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def update_comment(owner: str, repo: str, comment_id: int, request: Request,
                       payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request)
        comment = comment_or_404(owner, repo, comment_id)
        if comment["user"] != bot_login:
            raise ApiError(403, "Resource not accessible by integration")
        body = text_field(payload, "body", required=True)
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
        installation_repo(owner, repo, request)
        issue_or_404(owner, repo, number)
        return react(owner, repo, "issue", number, payload)

    @api.post("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
    def react_to_comment(owner: str, repo: str, comment_id: int, request: Request,
                         payload: dict = Body(default_factory=dict)) -> JSONResponse:
        installation_repo(owner, repo, request)
        comment_or_404(owner, repo, comment_id)
        return react(owner, repo, "comment", comment_id, payload)

    # Pull requests

    def branch_of(owner: str, ref: str, field: str) -> str:
        head_owner, _, branch = ref.rpartition(":")
        if head_owner and head_owner != owner:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": field, "code": "invalid"}])
        return branch

    @api.post("/repos/{owner}/{repo}/pulls", status_code=201)
    def create_pull(owner: str, repo: str, request: Request, payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request)
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
        pull = {"head": head, "base": base, "draft": bool(payload.get("draft", False)), "head_sha": head_sha}
        record = store.add_issue(owner, repo, title, text_field(payload, "body"), bot_login, pull=pull)
        return render.pull(record)

    @api.get("/repos/{owner}/{repo}/pulls")
    def list_pulls(owner: str, repo: str, request: Request, response: Response, state: str = "open",
                   head: str | None = None, base: str | None = None) -> list:
        installation_repo(owner, repo, request)
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
        installation_repo(owner, repo, request)
        return render.pull(pull_or_404(owner, repo, number))

    @api.patch("/repos/{owner}/{repo}/pulls/{number}")
    def update_pull(owner: str, repo: str, number: int, request: Request,
                    payload: dict = Body(default_factory=dict)) -> dict:
        installation_repo(owner, repo, request)
        pull_or_404(owner, repo, number)
        changes: dict[str, Any] = {}
        for key in ("title", "body", "state", "base"):
            if key in payload:
                changes[key] = text_field(payload, key)
        if changes.get("state") not in (None, "open", "closed"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "state", "code": "invalid"}])
        if "base" in changes and bare.branch_sha(repo_path(owner, repo), changes["base"]) is None:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        return render.pull(store.update_issue(owner, repo, number, **changes))

    @api.get("/repos/{owner}/{repo}/pulls/{number}/comments")
    def list_review_comments(owner: str, repo: str, number: int, request: Request, response: Response) -> list:
        installation_repo(owner, repo, request)
        pull_or_404(owner, repo, number)
        comments = [render.review_comment(record) for record in store.review_comments_on(owner, repo, number)]
        return paginate(request, response, comments)

    return api


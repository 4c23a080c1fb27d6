"""The operator's dashboard and `/metrics`, served only when AGENTCODER_ADMIN_TOKEN is set.

Server-rendered with Jinja2 (autoescaped: issue titles, logs and model output are untrusted);
one small script polls a running job's progress. Pages need the session cookie set by the login
form or `Authorization: Bearer <token>`; `/metrics` needs the bearer token.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.app.metrics import CONTENT_TYPE, Metrics
from bot.app.queue import FINAL_STATES, JobQueue
from bot.config import Settings
from webhooks import views
from webhooks.auth import SESSION_COOKIE, AdminAuth, local_path

HERE = Path(__file__).parent
JOBS_SHOWN = 100
STATES = ("queued", "running", "done", "failed", "cancelled")
LOGIN_FORM_BYTES = 4096
# The pages load only our own stylesheet and script, post only to us, and cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
                               " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                         trim_blocks=True, lstrip_blocks=True)
_templates.globals.update(views.TEMPLATE_HELPERS)


def add_dashboard(app: FastAPI, settings: Settings, queue: JobQueue, metrics: Metrics) -> None:
    """Mount the login form, the job list, the job pages and /metrics on `app`."""
    assert settings.admin_token, "the dashboard is only served with an admin token"
    auth = AdminAuth(settings.admin_token)
    github = views.github_web_url(settings.github_api_url)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(name: str, status: int = 200, *, signed_in: bool = True, **context) -> HTMLResponse:
        html = _templates.get_template(name).render(
            github=github, logout_token=auth.logout_token if signed_in else None, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def refuse(request: Request) -> Response | None:
        """None when the request may see the dashboard; else the login page, or 401 for a bad bearer token."""
        bearer = auth.bearer(request)
        if bearer is True or (bearer is None and auth.has_session(request)):
            return None
        if bearer is False:
            return PlainTextResponse("unauthorized: wrong admin token\n", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer", **SECURITY_HEADERS})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return page("login.html", 401, signed_in=False, next=local_path(target), error=None)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        """The login form."""
        if auth.has_session(request):
            return RedirectResponse(local_path(next), status_code=303)
        return page("login.html", signed_in=False, next=local_path(next), error=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        """Check the token; on success set the session cookie and go where the user was going."""
        body = await request.body()
        form = parse_qs(body[:LOGIN_FORM_BYTES].decode("utf-8", "replace"))
        target = local_path((form.get("next") or ["/"])[0])
        if not auth.token_matches((form.get("token") or [""])[0]):
            return page("login.html", 401, signed_in=False, next=target, error="That is not the admin token.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, auth.session_value, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        """End the session; needs the form's anti-CSRF token."""
        form = parse_qs((await request.body())[:LOGIN_FORM_BYTES].decode("utf-8", "replace"))
        if not auth.logout_allowed(request, (form.get("csrf") or [""])[0]):
            return PlainTextResponse("forbidden: log out from the dashboard's own button\n", status_code=403,
                                     headers=SECURITY_HEADERS)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def job_list(request: Request, state: str = "", repo: str = "") -> Response:
        """Recent jobs with filters, and the totals of the last 24 hours and 7 days."""
        refused = refuse(request)
        if refused is not None:
            return refused
        state = state if state in STATES else ""
        repo = repo.strip()[:200]
        now = time.time()
        totals = [("24 hours", queue.totals(now - 24 * 3600)), ("7 days", queue.totals(now - 7 * 24 * 3600))]
        jobs = queue.recent(JOBS_SHOWN, state=state or None, repo=repo or None)
        return page("jobs.html", jobs=jobs, totals=totals, states=STATES, state=state, repo=repo)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        """One job: live progress while it runs, then its log, tests and cost."""
        refused = refuse(request)
        if refused is not None:
            return refused
        record = queue.job_record(int(job_id)) if job_id.isdigit() and len(job_id) < 19 else None
        if record is None:
            return page("not_found.html", 404, message=f"There is no job {job_id}.")
        return page("job.html", job=record.job, outcome=record.outcome, progress=record.progress,
                    final=record.job.state in FINAL_STATES)

    @app.get("/jobs/{job_id}/progress")
    def job_progress(request: Request, job_id: str) -> Response:
        """A job's state and progress messages, for the live view."""
        refused = refuse(request)
        if refused is not None:
            return refused
        record = queue.job_record(int(job_id)) if job_id.isdigit() and len(job_id) < 19 else None
        if record is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse({"state": record.job.state, "final": record.job.state in FINAL_STATES,
                             "progress": record.progress}, headers={"Cache-Control": "no-store"})

    @app.get("/metrics")
    def metrics_text(request: Request) -> Response:
        """Prometheus text format; needs `Authorization: Bearer <AGENTCODER_ADMIN_TOKEN>`."""
        if auth.bearer(request) is not True:
            return PlainTextResponse("unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)


"""The HTTP edge: verify GitHub's signature, dedupe, route, enqueue, answer at once.

Nothing here calls the network; the job body runs later in a worker. Unexpected errors
are caught here (and only here, on the HTTP side) and answered with a one-line 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app.metrics import Metrics
from bot.app.queue import Job, JobQueue
from bot.config import ConfigError, Settings
from bot.redact import describe_error
from webhooks import signature
from webhooks.auth import AdminAuth
from webhooks.dashboard import add_dashboard
from webhooks.routes import route

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"
MAX_JOBS_LISTED = 500
# GitHub caps webhook payloads at 25 MB; anything larger is not GitHub's, and is never read whole.
MAX_BODY_BYTES = 25 * 2**20


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as `Content-Length` or the bytes streamed so far pass `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: Settings,
    queue: JobQueue,
    *,
    bot_login: str | Callable[[], str | None],
    on_enqueue: Callable[[Job], None] | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The webhook receiver, the health check and (with an admin token) the job list, dashboard and metrics.

    `bot_login` may be a function answering None while the login is not known (GitHub was unreachable).
    """
    login_of = bot_login if callable(bot_login) else (lambda: bot_login)
    if not settings.webhook_secret:
        raise ConfigError("set AGENTCODER_WEBHOOK_SECRET to the App's webhook secret")
    secret = settings.webhook_secret
    metrics = metrics or Metrics(queue.count_by_state)
    app = FastAPI(title="AgentCoder", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_CatchAll)

    def accept(event: str, delivery_id: str, body: bytes) -> JSONResponse:
        """Dedupe, parse, route and enqueue one verified delivery (runs off the event loop)."""
        if not queue.record_delivery(delivery_id):
            return JSONResponse({"status": "duplicate"}, status_code=200)
        try:
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError):
                queue.forget_delivery(delivery_id)
                return JSONResponse({"error": "the body is not JSON"}, status_code=400)
            job = None
            if isinstance(payload, dict):
                job = route(event, payload, trigger_label=settings.trigger_label, bot_login=login_of(),
                            delivery_id=delivery_id)
            if job is None:
                return JSONResponse({"status": "ignored"}, status_code=200)
            job = queue.enqueue(job, admitted=False)  # it changes nothing before its sender is checked
        except BaseException:
            # Nothing was queued: let GitHub's redelivery of this id be taken, not called a duplicate.
            queue.forget_delivery(delivery_id)
            raise
        log.info("delivery %s: queued job %s for %s #%s (%s)", delivery_id, job.id, job.repo,
                 job.issue_number, job.trigger)
        if on_enqueue is not None:
            try:
                on_enqueue(job)
            except Exception as exc:  # the job is stored; a worker's next poll picks it up
                log.error("after queueing job %s: %s", job.id, describe_error(exc))
        return JSONResponse({"status": "queued", "job": job.id}, status_code=202)

    @app.post("/webhooks")
    async def receive_webhook(request: Request) -> JSONResponse:
        """GitHub's deliveries: 202 when a job was queued, 200 when ignored or a duplicate."""
        event = request.headers.get(EVENT_HEADER, "")
        body = await read_bounded(request, MAX_BODY_BYTES)
        if body is None:
            metrics.delivery(event, "too_large")
            return JSONResponse({"error": f"the body is larger than GitHub's {MAX_BODY_BYTES // 2**20} MB limit"},
                                status_code=413)
        if not signature.is_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
            metrics.delivery(event, "unauthorized")
            return JSONResponse({"error": f"missing or wrong {SIGNATURE_HEADER}"}, status_code=401)
        delivery_id = request.headers.get(DELIVERY_HEADER, "").strip()
        if not delivery_id:
            metrics.delivery(event, "bad_request")
            return JSONResponse({"error": f"missing {DELIVERY_HEADER}"}, status_code=400)
        try:
            response = await run_in_threadpool(accept, event, delivery_id, body)
        except Exception:
            metrics.delivery(event, "error")
            raise
        outcome = json.loads(response.body).get("status", "bad_request")
        metrics.delivery(event, outcome)
        return response

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness."""
        return {"status": "ok"}

    if settings.admin_token:
        auth = AdminAuth(settings.admin_token)

        @app.get("/api/jobs")
        def list_jobs(request: Request, limit: int = 50) -> JSONResponse:
            """Recent jobs, newest first; needs `Authorization: Bearer <AGENTCODER_ADMIN_TOKEN>`."""
            if auth.bearer(request) is not True:
                return JSONResponse({"error": "unauthorized"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            jobs = queue.recent(max(1, min(limit, MAX_JOBS_LISTED)))
            return JSONResponse([_job_json(job) for job in jobs])

        add_dashboard(app, settings, queue, metrics)

    return app


def _job_json(job: Job) -> dict:
    return {
        "id": job.id,
        "repo": job.repo,
        "issue": job.issue_number,
        "trigger": job.trigger,
        "state": job.state,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "detail": job.detail,
    }


class _CatchAll:
    """Turn any unexpected error into a one-line JSON 500, logged without secrets or traceback."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("%s %s failed: %s", scope.get("method"), scope.get("path"), describe_error(exc))
            if started:
                return
            response = JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)
            await response(scope, receive, send)

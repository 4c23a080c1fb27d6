"""The composition root: every collaborator is built here, from `Settings`, and handed inward.

The CLI (`check`, `fix`, `bench`, `serve`, `worker`, `playground`) and the playground call these
functions; nothing else constructs a sandbox, a model client, a GitHub App client, a queue or a loop.
A collaborator that cannot be built raises `ConfigError` with one line naming the setting to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from bot.app.engines import queue_from_url
from bot.app.handler import JobHandler, LoopFactory
from bot.app.metrics import MeteredModel, MeteredSandbox, Metrics
from bot.app.queue import JobQueue
from bot.app.workers import WorkerPool
from bot.config import ConfigError, Settings
from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Programmer, TestDesigner
from bot.loop.outcome import StepEvent
from bot.outside.github import Failure, GitHubApp, GitHubError
from bot.outside.model import LLMError, ModelClient
from bot.sandbox.executor import Sandbox, SandboxUnavailable
from webhooks.app import create_app

Progress = Callable[[StepEvent], None]
log = logging.getLogger(__name__)


def build_sandbox(settings: Settings) -> Sandbox:
    """The sandbox on the configured Docker daemon, with the configured base image and limits."""
    try:
        return Sandbox.from_settings(settings)
    except SandboxUnavailable as exc:
        raise ConfigError(str(exc)) from exc


def build_model(settings: Settings) -> ModelClient:
    """The OpenAI-compatible client, each agent on its configured model."""
    try:
        return ModelClient.from_settings(settings)
    except LLMError as exc:
        raise ConfigError(str(exc)) from exc


def build_loop(settings: Settings, sandbox: Sandbox, model: ModelClient, *,
               is_cancelled: Callable[[], bool] = lambda: False, progress: Progress = lambda _: None) -> AgentLoop:
    """The paper's loop with its two agents and the executor, budgets from the settings."""
    return AgentLoop(sandbox, Programmer(model), TestDesigner(model), LoopLimits.from_settings(settings),
                     is_cancelled=is_cancelled, progress=progress, prices=settings.model_prices)


def loop_factory(settings: Settings, sandbox: Sandbox, model: ModelClient) -> LoopFactory:
    """What the App's job calls to get a fresh loop for one job."""
    def make_loop(is_cancelled: Callable[[], bool], progress: Progress) -> AgentLoop:
        return build_loop(settings, sandbox, model, is_cancelled=is_cancelled, progress=progress)

    return make_loop


@dataclass
class Service:
    """The collaborators of a running bot."""

    web: FastAPI
    pool: WorkerPool | None  # None when AGENTCODER_CONCURRENT_JOBS=0: this process runs no jobs
    queue: JobQueue
    bot_login: str
    metrics: Metrics


def build_service(settings: Settings, *, sandbox: Sandbox | None = None, recover: bool = True) -> Service:
    """Check the settings, try to reach GitHub as the App, and wire queue, workers and webhook edge together.

    GitHub refusing the App (a 401 for its key, a wrong URL) stops here; GitHub being unreachable does not:
    deliveries are taken and the bot's login is learned later (GitHub never redelivers by itself).

    The queue is the engine AGENTCODER_DATABASE_URL names: sqlite:// embedded, postgresql:// procrastinate
    (its schema brought up to date first; an unreachable database is a ConfigError naming the setting). With
    AGENTCODER_CONCURRENT_JOBS=0 there is no worker pool, so no sandbox and no model client either.
    """
    settings.require_github_app()
    queue = queue_from_url(settings.database_url)  # first: an unreachable database is named before anything waits
    github = GitHubApp.from_settings(settings)
    try:
        bot_login = github.bot_login()
    except GitHubError as exc:
        if exc.failure is not Failure.unavailable:
            queue.close()
            raise ConfigError(f"{exc}: check AGENTCODER_GITHUB_APP_ID, the private key and AGENTCODER_GITHUB_API_URL") from exc
        log.warning("GitHub's API cannot be reached now (%s); taking deliveries and trying again later", exc)
        bot_login = None
    if recover:
        queue.recover_stalled(settings.worker_stalled_after_s)
    metrics = Metrics(queue.count_by_state)
    pool = None
    if settings.concurrent_jobs > 0:
        metered_sandbox = MeteredSandbox(sandbox or build_sandbox(settings), metrics)
        metered_model = MeteredModel(build_model(settings), metrics, settings.model_prices)
        handler = JobHandler(github, loop_factory(settings, metered_sandbox, metered_model),
                             record_progress=queue.record_progress)
        pool = WorkerPool(queue, handler, settings.concurrent_jobs, heartbeat_s=settings.worker_heartbeat_s,
                          stalled_after_s=settings.worker_stalled_after_s, on_finished=metrics.job_finished,
                          admission=handler.admit)
    web = create_app(settings, queue, bot_login=github.known_bot_login, metrics=metrics,
                     on_enqueue=(lambda job: pool.wake()) if pool is not None else None)
    return Service(web, pool, queue, bot_login or "(not known yet: GitHub unreachable)", metrics)

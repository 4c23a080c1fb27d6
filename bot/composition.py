"""Builds the running App in one place: settings → GitHub App, sandbox, model → queue, workers, webhook edge."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from bot.app.handler import JobHandler
from bot.app.queue import SqliteQueue, queue_from_url
from bot.app.workers import WorkerPool
from bot.config import Settings
from bot.loop.fix import build_loop
from bot.outside.github import GitHubApp
from bot.outside.model import ModelClient
from bot.sandbox.executor import Sandbox
from webhooks.app import create_app


@dataclass
class Service:
    """The collaborators of a running bot."""

    web: FastAPI
    pool: WorkerPool
    queue: SqliteQueue
    bot_login: str


def build_service(settings: Settings, *, sandbox: Sandbox | None = None, model: ModelClient | None = None,
                  recover: bool = True) -> Service:
    """Check the settings, reach GitHub as the App, and wire queue, workers and webhook edge together."""
    settings.require_github_app()
    github = GitHubApp.from_settings(settings)
    bot_login = github.bot_login()
    sandbox = sandbox or Sandbox.from_settings(settings)
    model = model or ModelClient.from_settings(settings)
    queue = queue_from_url(settings.database_url)
    if recover:
        queue.requeue_interrupted()

    def make_loop(is_cancelled, progress):
        return build_loop(settings, sandbox, model, is_cancelled=is_cancelled, progress=progress)

    pool = WorkerPool(queue, JobHandler(github, bot_login, make_loop), settings.concurrent_jobs)
    web = create_app(settings, queue, bot_login=bot_login, on_enqueue=lambda job: pool.wake())
    return Service(web, pool, queue, bot_login)

"""`agentcoder register`: GitHub's App manifest flow, as probot runs it on first start.

A local page holds a button that posts `app.yml`'s manifest to GitHub (a user's or an organisation's new-App
form); GitHub sends the browser back with `?code=`, which is exchanged for the App's id, private key and
webhook secret. Those go to one file readable only by its owner, in a form the shell can `source`.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from bot.config import ConfigError
from bot.dev.serving import ThreadedServer
from bot.outside.github import AppRegistration, GitHubError, convert_manifest

MANIFEST_KEYS = ("name", "url", "description", "hook_attributes", "public", "default_events", "default_permissions")


class RegisterError(Exception):
    """The manifest flow could not finish; the message says why."""


def load_manifest(app_yml: Path, redirect_url: str, webhook_url: str | None = None) -> dict:
    """GitHub's manifest from probot's app.yml, with the redirect back to this command (and the webhook URL)."""
    try:
        data = yaml.safe_load(app_yml.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the App manifest {app_yml}: {exc}") from exc
    if not isinstance(data, dict) or not data.get("name"):
        raise ConfigError(f"{app_yml}: not an App manifest (it needs at least a name)")
    manifest = {key: data[key] for key in MANIFEST_KEYS if key in data}
    if webhook_url:
        manifest["hook_attributes"] = {**manifest.get("hook_attributes", {}), "url": webhook_url}
    manifest["redirect_url"] = redirect_url
    return manifest


def new_app_url(github_url: str, org: str | None) -> str:
    """Where GitHub takes a manifest: a user's or an organisation's new-App form."""
    base = github_url.rstrip("/")
    return f"{base}/organizations/{org}/settings/apps/new" if org else f"{base}/settings/apps/new"


def write_credentials(path: Path, registration: AppRegistration, api_url: str) -> None:
    """The App's settings as shell assignments, in a file only its owner may read (0600 from its creation)."""
    text = (f"# GitHub App {registration.slug} ({registration.html_url}), registered by `agentcoder register`.\n"
            f"AGENTCODER_GITHUB_APP_ID={registration.app_id}\n"
            f"AGENTCODER_WEBHOOK_SECRET={registration.webhook_secret}\n"
            f"AGENTCODER_GITHUB_API_URL={api_url}\n"
            f"AGENTCODER_GITHUB_PRIVATE_KEY=\"{registration.private_key.strip()}\"\n")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already: move it away or name another file with --out") from None
    with os.fdopen(fd, "w") as out:
        out.write(text)


def read_credentials(path: Path) -> dict[str, str]:
    """The assignments of a credentials file (what `set -a; . FILE` gives the shell)."""
    values: dict[str, str] = {}
    key = None
    for line in path.read_text().splitlines():
        if key is not None:
            values[key] += "\n" + line.rstrip('"')
            if line.endswith('"'):
                key = None
            continue
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        if value.startswith('"') and not (len(value) > 1 and value.endswith('"')):
            key, values[name] = name, value[1:]
        else:
            values[name] = value.strip('"')
    return values


@dataclass
class Registration:
    """The outcome of one run of the flow."""

    registration: AppRegistration | None = None
    error: str | None = None


def _page(action: str, manifest: dict) -> str:
    value = html.escape(json.dumps(manifest), quote=True)
    return ("<!doctype html><html><head><meta charset=utf-8><title>Register AgentCoder</title></head><body>"
            "<h1>Register AgentCoder as a GitHub App</h1>"
            f"<p>This posts the manifest from <code>app.yml</code> to <code>{html.escape(action)}</code>; "
            "GitHub asks you to confirm, then sends you back here.</p>"
            f"<form action=\"{html.escape(action, quote=True)}\" method=\"post\">"
            f"<input type=\"hidden\" name=\"manifest\" value=\"{value}\">"
            "<button type=\"submit\" id=\"register\">Register the GitHub App</button></form></body></html>")


def build_register_app(manifest_for: Callable[[str], dict], action: str, state: str,
                       finish: Callable[[str], str]) -> FastAPI:
    """The local pages: `/` with the button, `/callback` where GitHub sends the browser back."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @web.get("/", response_class=HTMLResponse)
    def start(request: Request) -> str:
        callback = str(request.url_for("callback"))
        return _page(f"{action}?state={state}", manifest_for(callback))

    @web.get("/callback", response_class=HTMLResponse, name="callback")
    def callback(request: Request, code: str = "") -> HTMLResponse:
        given = request.query_params.get("state", "")
        if not code or not secrets.compare_digest(given, state):
            return HTMLResponse("<p>This link did not come from the registration this command started.</p>", 400)
        return HTMLResponse(finish(code))

    return web


def run_register(settings, out: Path, *, app_yml: Path, host: str = "127.0.0.1", port: int = 0,
                 org: str | None = None, webhook_url: str | None = None, timeout_s: float = 900.0,
                 announce: Callable[[str], None] = print) -> AppRegistration:
    """Serve the page, wait for GitHub's redirect, exchange the code and write the credentials file."""
    if out.exists():
        raise ConfigError(f"{out} exists already: move it away or name another file with --out")
    manifest_base = load_manifest(app_yml, "http://placeholder/callback", webhook_url)
    state = secrets.token_urlsafe(16)
    done = threading.Event()
    result = Registration()

    def finish(code: str) -> str:
        if done.is_set():
            return "<p>This App is registered already.</p>"
        try:
            registration = convert_manifest(settings.github_api_url, code)
            write_credentials(out, registration, settings.github_api_url)
            result.registration = registration
            page = (f"<p>Registered <a href=\"{html.escape(registration.html_url)}\">{html.escape(registration.slug)}"
                    "</a>. Install it on your repositories from that page; the credentials are in "
                    f"<code>{html.escape(str(out))}</code>. You can close this tab.</p>")
        except (GitHubError, ConfigError, OSError) as exc:
            result.error = str(exc)
            page = f"<p>The registration could not finish: {html.escape(str(exc))}</p>"
        done.set()
        return page

    web = build_register_app(lambda callback: {**manifest_base, "redirect_url": callback},
                             new_app_url(settings.github_url, org), state, finish)
    server = ThreadedServer(web, host, name="agentcoder-register", port=port).start()
    try:
        announce(f"Open {server.url}/ in a browser and press the button to register the App on "
                 f"{settings.github_url}{' for ' + org if org else ''}.")
        if not done.wait(timeout_s):
            raise RegisterError(f"no answer from GitHub within {timeout_s:.0f} s; run `agentcoder register` again")
    finally:
        server.stop()
    if result.registration is None:
        raise RegisterError(result.error or "the registration did not finish")
    return result.registration

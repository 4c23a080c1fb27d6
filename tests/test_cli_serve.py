"""`agentcoder serve`, the production main job: refuses bad settings in one line, serves with good ones."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from bot.dev.github.standin import GitHubStandin
from tests.cli_runs import HEAVY_MODULES, clean_environment, run_process
from tests.conftest import free_port
from webhooks.signature import sign


def serve(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", *args], env={**clean_environment(), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


APP_ID_AND_SECRET = {"AGENTCODER_GITHUB_APP_ID": "1", "AGENTCODER_WEBHOOK_SECRET": "s"}
BAD_APP_SETTINGS = {
    "no-app-id": ({}, "set AGENTCODER_GITHUB_APP_ID"),
    "no-secret": ({"AGENTCODER_GITHUB_APP_ID": "1"}, "set AGENTCODER_WEBHOOK_SECRET"),
    "no-key": (APP_ID_AND_SECRET, "set AGENTCODER_GITHUB_PRIVATE_KEY"),
    "bad-key": ({**APP_ID_AND_SECRET, "AGENTCODER_GITHUB_PRIVATE_KEY": "nope"},
                "AGENTCODER_GITHUB_PRIVATE_KEY: not a PEM private key"),
    "missing-key-file": ({**APP_ID_AND_SECRET, "AGENTCODER_GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"},
                         "cannot read /nonexistent/key.pem"),
}


@pytest.mark.parametrize("name", list(BAD_APP_SETTINGS))
def test_serve_refuses_missing_or_bad_app_settings(cli, name):
    env, message = BAD_APP_SETTINGS[name]
    # Were the settings let through, GitHub and the model would be local ports nothing listens on.
    done = cli("serve", "--port", free_port(), env={"AGENTCODER_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
                                                    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env})
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_console_script_refuses_a_bad_key_in_one_line_before_importing_the_app():
    # `agentcoder serve` as an operator starts it: the installed entry point, its exit status, nothing else on stderr
    # from start-up, and no App module imported yet.
    env, message = BAD_APP_SETTINGS["bad-key"]
    done, imported = run_process("serve", "--port", free_port(), entry_point=True, env={
        **clean_environment(), "AGENTCODER_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **env})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"agentcoder: {message}") and done.stderr.count("\n") == 1, done.stderr
    assert imported.isdisjoint(HEAVY_MODULES), sorted(imported & HEAVY_MODULES)


def wait_for_health(process: subprocess.Popen, port: int) -> httpx.Response:
    deadline = time.monotonic() + 90
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "serve did not start listening"
            time.sleep(0.2)


def test_serve_refuses_in_one_line_when_github_refuses_the_apps_key(tmp_path, sandbox):
    with GitHubStandin(tmp_path / "gh", app_id=7) as standin:
        (tmp_path / "key.pem").write_text(standin.app_private_key_pem)
        process = serve({"AGENTCODER_GITHUB_APP_ID": "8", "AGENTCODER_WEBHOOK_SECRET": "s",
                         "AGENTCODER_GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "key.pem"),
                         "AGENTCODER_GITHUB_API_URL": standin.api_url, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
        out, err = process.communicate(timeout=120)
    assert process.returncode == 2 and len(err.strip().splitlines()) == 1
    assert "GitHub GET /app failed: HTTP 401" in err and "AGENTCODER_GITHUB_APP_ID" in err


def test_serve_starts_and_takes_deliveries_while_github_cannot_be_reached(tmp_path, sandbox):
    with GitHubStandin(tmp_path / "gh", app_id=7) as standin:
        key = standin.app_private_key_pem
    (tmp_path / "key.pem").write_text(key)
    port = free_port()
    process = serve({"AGENTCODER_GITHUB_APP_ID": "7", "AGENTCODER_WEBHOOK_SECRET": "s",
                     "AGENTCODER_GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "key.pem"),
                     "AGENTCODER_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
                     "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "AGENTCODER_DATABASE_URL": f"sqlite:///{tmp_path}/jobs.db"},
                    "--port", str(port))
    try:
        assert wait_for_health(process, port).status_code == 200
        body = b'{"action":"labeled","label":{"name":"agentcoder"},"issue":{"number":1},' \
               b'"repository":{"full_name":"o/r"},"installation":{"id":1},"sender":{"login":"m","type":"User"}}'
        delivered = httpx.post(f"http://127.0.0.1:{port}/webhooks", content=body, timeout=10, headers={
            "X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json",
            "X-Hub-Signature-256": sign("s", body)})
        assert delivered.status_code == 202 and delivered.json()["status"] == "queued"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert "cannot be reached now" in err and "serving webhooks for (not known yet" in err
    assert "Traceback" not in err


def test_serve_answers_health_checks_and_stops_cleanly(tmp_path, sandbox):
    with GitHubStandin(tmp_path / "gh", app_id=7) as standin:
        (tmp_path / "key.pem").write_text(standin.app_private_key_pem)
        port = free_port()
        process = serve({"AGENTCODER_GITHUB_APP_ID": "7", "AGENTCODER_WEBHOOK_SECRET": "s",
                         "AGENTCODER_GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "key.pem"),
                         "AGENTCODER_GITHUB_API_URL": standin.api_url, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                         "AGENTCODER_DATABASE_URL": f"sqlite:///{tmp_path}/jobs.db"}, "--port", str(port))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.communicate()[1]
                    assert time.monotonic() < deadline, "serve did not start listening"
                    time.sleep(0.2)
            assert response.status_code == 200 and response.json() == {"status": "ok"}
            unsigned = httpx.post(f"http://127.0.0.1:{port}/webhooks", content=b"{}", timeout=5)
            assert unsigned.status_code == 401
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        assert "serving webhooks for agentcoder[bot]" in err
        assert "Traceback" not in err and "-----BEGIN" not in out + err

"""`agentcoder register` as a user runs it: the CLI serves the page, the "browser" posts the manifest to the
stand-in's new-App form, GitHub redirects back with a code, the CLI exchanges it and writes a 0600 file whose
credentials then work against the same GitHub."""

from __future__ import annotations

import html
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.app.register import read_credentials
from bot.dev.github.standin import GitHubStandin
from bot.outside.github import GitHubApp
from tests.conftest import free_port, make_repo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def standin(tmp_path):
    with GitHubStandin(tmp_path / "gh", app_id=5151) as server:
        server.create_repo("octo-org", "demo", make_repo(tmp_path / "src", {"a.py": "A = 1\n"}, commit=False))
        yield server


def start_register(standin, out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTCODER_GITHUB_URL": standin.api_url,
           "AGENTCODER_GITHUB_API_URL": standin.api_url}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "register", "--port", "0", "--out", str(out), *extra],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline()
    match = re.search(r"Open (http://127\.0\.0\.1:\d+)/ in a browser", line)
    assert match, line + process.stderr.read() if process.poll() is not None else line
    return process, match.group(1)


def test_register_writes_working_credentials_readable_only_by_the_owner(standin, tmp_path):
    out = tmp_path / "agentcoder-app.env"
    process, page_url = start_register(standin, out, "--org", "octo-org", "--webhook-url", "https://bot.example/webhooks")
    try:
        page = httpx.get(page_url + "/", trust_env=False).text
        action = html.unescape(re.search(r'<form action="([^"]+)" method="post">', page).group(1))
        manifest = html.unescape(re.search(r'name="manifest" value="([^"]+)"', page).group(1))
        assert action.startswith(f"{standin.api_url}/organizations/octo-org/settings/apps/new?state=")
        # A forged callback (wrong state) is refused and changes nothing.
        forged = httpx.get(page_url + "/callback?code=abc&state=forged", trust_env=False)
        assert forged.status_code == 400 and not out.exists()
        posted = httpx.post(action, data={"manifest": manifest}, trust_env=False)  # the button
        assert posted.status_code == 302
        back = httpx.get(posted.headers["location"], trust_env=False)  # GitHub sends the browser back
        assert back.status_code == 200 and "Registered" in back.text
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "set -a && . " in stdout and "agentcoder serve" in stdout
    [sent] = standin.manifests
    assert sent["org"] == "octo-org" and sent["manifest"]["name"] == "AgentCoder"
    assert sent["manifest"]["hook_attributes"]["url"] == "https://bot.example/webhooks"
    assert sent["manifest"]["redirect_url"] == page_url + "/callback"
    assert {"pull_request_review", "pull_request_review_comment"} <= set(sent["manifest"]["default_events"])
    # The file: owner-only, and what it holds works against GitHub.
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    values = read_credentials(out)
    assert values["AGENTCODER_GITHUB_APP_ID"] == "5151"
    assert values["AGENTCODER_WEBHOOK_SECRET"] == standin.webhook_secret
    app = GitHubApp(values["AGENTCODER_GITHUB_APP_ID"], values["AGENTCODER_GITHUB_PRIVATE_KEY"],
                    values["AGENTCODER_GITHUB_API_URL"], auto_retry=False)
    assert app.bot_login() == "agentcoder[bot]"
    assert app.repo("octo-org/demo", 1).repository().default_branch == "main"
    # The shell reads the same values (the printed next command sources the file).
    shell = subprocess.run(["sh", "-c", f'set -a && . "{out}" && set +a && printf %s "$AGENTCODER_GITHUB_PRIVATE_KEY"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == standin.app_private_key_pem.strip()


def test_register_refuses_to_overwrite_a_credentials_file(cli, tmp_path):
    out = tmp_path / "agentcoder-app.env"
    out.write_text("keep me")
    # Refused before anything is served or asked: GitHub here is a port nothing listens on.
    done = cli("register", "--port", "0", "--out", out, env={"AGENTCODER_GITHUB_URL": f"http://127.0.0.1:{free_port()}"})
    assert done.returncode == 2 and done.stderr.strip() == (
        f"agentcoder: {out} exists already: move it away or name another file with --out")
    assert out.read_text() == "keep me" and done.stdout == ""

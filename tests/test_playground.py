import pytest

"""`agentcoder playground`, the README's main-job command, as a newcomer runs it."""

import json
import os
import subprocess
import sys

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image


def test_playground_opens_a_draft_pr_and_prints_it_as_json(sandbox):
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "playground", "--json"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["resolved"] is True and result["scripted_model"] is True
    assert isinstance(result["pr_number"], int)
    assert result["pr_url"].endswith(f"/octo-org/calculator/pull/{result['pr_number']}")
    body = result["pr_body"]
    assert "Fixes #1" in body and "(fail-to-pass)" in body and "<details><summary>Iteration log</summary>" in body
    assert "DID NOT RAISE" in body  # the real failure of iteration 1 was fed back
    assert result["job_state"] == "done"
    assert f"opened draft pull request #{result['pr_number']}" in result["status_comment"]

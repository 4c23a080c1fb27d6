"""`agentcoder playground`, the README's main-job command, as a newcomer runs it (and an operator looks on)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image


def test_playground_opens_a_draft_pr_and_its_dashboard_shows_the_job_with_its_cost(sandbox):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "AGENTCODER_"))}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "playground", "--json", "--dashboard"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        result = json.loads(process.stdout.readline())  # printed once the job is done, while the App still serves
        deadline, found = time.monotonic() + 30, None
        while found is None and time.monotonic() < deadline:
            found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/) \(admin token: (\S+)\)", process.stderr.readline())
        assert found, "the playground did not print the dashboard's address"
        url, token = found.groups()
        bearer = {"Authorization": f"Bearer {token}"}
        listing = httpx.get(url, headers=bearer, trust_env=False, timeout=10).text
        page = httpx.get(f"{url}jobs/{result['job_id']}", headers=bearer, trust_env=False, timeout=10).text
        scrape = httpx.get(f"{url}metrics", headers=bearer, trust_env=False, timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0, process.stderr.read()

    assert result["resolved"] is True and result["scripted_model"] is True
    assert isinstance(result["pr_number"], int)
    assert result["pr_url"].endswith(f"/octo-org/calculator/pull/{result['pr_number']}")
    body = result["pr_body"]
    assert "Fixes #1" in body and "(fail-to-pass)" in body and "<details><summary>Iteration log</summary>" in body
    assert "DID NOT RAISE" in body  # the real failure of iteration 1 was fed back
    assert result["job_state"] == "done"
    assert f"opened draft pull request #{result['pr_number']}" in result["status_comment"]
    # The scripted models are priced, so the PR, the job list and the job page show dollars.
    cost = f"${result['cost_usd']:.4f}"
    assert result["cost_usd"] > 0 and f"cost {cost}." in body
    assert f'href="/jobs/{result["job_id"]}"' in listing and f'<td class="num">{cost}</td>' in listing
    assert "Iteration log" in page and "fail-to-pass" in page and "test_empty_list_raises_value_error" in page
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scrape) for s in family.samples}
    assert samples[("agentcoder_jobs_finished_total", (("state", "done"), ("stop", "resolved"), ("trigger", "label")))] == 1

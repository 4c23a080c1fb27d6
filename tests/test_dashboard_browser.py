"""The dashboard in a real browser: Debian's Chromium (driven by Playwright) against the running App.

The App is built exactly as `serve` builds it, with the GitHub stand-in and the scripted model server
(the `world` of tests/app_world.py, as in tests/test_app_e2e.py). One job runs while the operator watches: log in through the form, see the
job running, watch its progress change without reloading, then see the finished job in the list with its
cost, open it and read its iteration log and generated tests; finally a Prometheus scrape counts it.
Screenshots of each page are kept under artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ModelPrice
from tests.app_world import (
    DESIGNED_TESTS,
    DESIGNER,
    FULL_NAME,
    MAINTAINER,
    OWNER,
    PROGRAMMER,
    REPO,
    RIGHT_FIX,
)

playwright = pytest.importorskip("playwright.sync_api", reason="scripts/setup installs playwright")

pytestmark = pytest.mark.docker

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium tries to reach the internet at every start.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
ADMIN = "browser-admin-token-0123456789abcdef"
HOSTILE_TITLE = "mean() crashes <script>window.__pwned = 1; alert('pwned')</script>"
PRICES = {PROGRAMMER: ModelPrice(input=2.5, output=10.0), DESIGNER: ModelPrice(input=0.15, output=0.6)}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(condition, timeout_s: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_operator_logs_in_watches_a_job_run_and_reads_its_log_tests_and_cost(world, browser):
    gate = threading.Event()

    def designer_answer(_request: dict) -> str:
        gate.wait(120)  # hold the job at the test designer until the operator watches it
        return DESIGNED_TESTS

    world.models.add(DESIGNER, designer_answer)
    world.models.add(PROGRAMMER, RIGHT_FIX)
    # The designer's answer is held while the operator watches: the model call may take that long.
    app = world.start_app(admin_token=ADMIN, model_prices=PRICES, llm_timeout_s=150)
    number = world.standin.create_issue(OWNER, REPO, HOSTILE_TITLE, "`mean([])` raises ZeroDivisionError.", user="octocat")
    assert world.standin.label_issue(OWNER, REPO, number, "agentcoder", sender=MAINTAINER).status_code == 202
    [job] = wait_until(lambda: [j for j in app.queue.recent() if j.state == "running"], what="the job to start")
    wait_until(lambda: any("test designer" in m for _, m in app.queue.job_record(job.id).progress),
               what="the job to reach the test designer")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    base = app.web.url

    # 1. Not logged in: the login form, which comes back to the job page.
    page.goto(f"{base}/jobs/{job.id}")
    assert page.locator("h1").inner_text() == "Log in"
    shot(page, "1-login")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "That is not the admin token."
    page.fill("#token", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/jobs/{job.id}")
    cookie = next(c for c in context.cookies() if c["name"] == "agentcoder_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # 2. The running job's page: progress grows without a reload.
    assert page.locator("#job-state").inner_text() == "running"
    page.evaluate("window.__same_page = true")
    before = page.locator("#progress-list li").count()
    shot(page, "2-job-running")
    gate.set()
    wait_until(lambda: page.locator("#progress-list li").count() > before, what="new progress on the page")
    assert page.evaluate("window.__same_page === true"), "the page reloaded instead of updating in place"
    wait_until(lambda: "iteration 1: programmer" in page.locator("#progress-list").inner_text(),
               what="the programmer's turn on the page")
    assert page.evaluate("window.__same_page === true")
    shot(page, "3-job-progress-updated")

    # 3. When the job ends the page shows the log and the tests (it reloads itself once).
    page.wait_for_selector("section.log", timeout=180_000)
    assert page.locator("#job-state").inner_text() == "done"
    log = page.locator("section.log").inner_text()
    assert "Result: resolved — resolved in iteration 1" in log and "Iteration 1" in log
    assert "Baseline (unchanged code): 1 passed, 0 failed, 0 errors" in log
    tests = page.locator("section.tests").inner_text()
    assert "test_empty_list_raises_value_error" in tests and "fail-to-pass" in tests and "regression" in tests
    # Per-test evidence: the fail-to-pass test failed on the unchanged code and passes with the change.
    evidence = page.locator("tr.generated-test", has_text="test_empty_list_raises_value_error")
    assert evidence.locator("td").all_inner_texts()[-2:] == ["failed", "passed"]
    evidence.locator("summary").click()
    assert "ZeroDivisionError" in evidence.locator("details.evidence").inner_text()
    usage = page.locator("section.usage").inner_text()
    assert PROGRAMMER in usage and DESIGNER in usage and "$" in usage and "unknown" not in usage
    pull = next(iter(world.standin.pulls.values()))["number"]
    assert page.locator(f"a[href$='/{FULL_NAME}/pull/{pull}']").count() == 1
    assert page.locator(".issue-title").inner_text() == HOSTILE_TITLE  # shown as text, never run
    shot(page, "4-job-finished")

    # 4. The job list: the finished job with its cost; open it from there.
    page.click("a.brand")
    row = page.locator(f"tr:has(a[href='/jobs/{job.id}'])")
    cells = row.locator("td").all_inner_texts()
    finished = app.queue.get(job.id)
    assert cells[1] == FULL_NAME and cells[2].startswith(f"#{number} ") and cells[4].startswith("done")
    assert cells[9] == f"${finished.cost_usd:.4f}" and finished.cost_usd > 0
    assert cells[8] == f"{finished.tokens:,}" and cells[10] == f"opened PR #{pull}"
    assert page.locator("[data-period='24 hours']").inner_text().count("$") == 1
    shot(page, "5-job-list")
    row.locator(f"a[href='/jobs/{job.id}']").click()
    page.wait_for_selector("section.log")
    assert "test_mean_of_two_numbers" in page.locator("section.tests").inner_text()

    # 5. An unknown job: the 404 page.
    assert page.goto(f"{base}/jobs/424242").status == 404
    assert page.locator("h1").inner_text() == "Not found"
    shot(page, "6-not-found")

    assert dialogs == [] and page.evaluate("window.__pwned === undefined")
    context.close()

    # 6. A Prometheus scrape counts the job.
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, trust_env=False).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("agentcoder_jobs_finished_total", (("state", "done"), ("stop", "resolved"), ("trigger", "label")))] == 1
    assert samples[("agentcoder_webhook_deliveries_total", (("event", "issues"), ("outcome", "queued")))] == 1
    assert samples[("agentcoder_model_calls_total", (("agent", "programmer"), ("model", PROGRAMMER)))] == 1
    assert samples[("agentcoder_model_cost_usd_total", (("agent", "programmer"), ("model", PROGRAMMER)))] > 0
    assert samples[("agentcoder_job_duration_seconds_count", (("trigger", "label"),))] == 1
    assert samples[("agentcoder_sandbox_run_duration_seconds_count", (("phase", "test"),))] >= 3
    assert samples[("agentcoder_jobs", (("state", "running"),))] == 0

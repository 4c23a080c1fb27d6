"""The dashboard and /metrics over real HTTP: access control, escaping, 404s, totals, and the Prometheus text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app.metrics import Metrics
from bot.app.queue import Job, JobResult
from bot.app.sqlite_queue import SqliteQueue
from bot.config import load_settings
from bot.dev.serving import ThreadedServer
from bot.loop.outcome import GeneratedTest, Outcome, Stop, Usage
from webhooks.app import create_app
from webhooks.auth import SESSION_COOKIE, local_path

ADMIN = "dashboard-admin-token-0123456789"
HOSTILE_TITLE = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>'


@contextmanager
def serving(tmp_path: Path, queue: SqliteQueue, **overrides) -> Iterator[httpx.Client]:
    values = {"webhook_secret": "s", "admin_token": ADMIN, "github_api_url": "https://api.github.com"} | overrides
    app = create_app(load_settings(**values), queue, bot_login="agentcoder[bot]", metrics=Metrics(queue.count_by_state))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SqliteQueue]:
    q = SqliteQueue(tmp_path / "jobs.db")
    yield q
    q.close()


@pytest.fixture
def client(tmp_path, queue) -> Iterator[httpx.Client]:
    with serving(tmp_path, queue) as http:
        yield http


BEARER = {"Authorization": f"Bearer {ADMIN}"}


def finished_job(queue: SqliteQueue, title: str = "mean() crashes", *, model: str = "gpt-4o-mini",
                 cost: float | None = 0.0123, repo: str = "octo/calc", issue: int = 7) -> Job:
    job = queue.enqueue(Job(repo, 1, issue, "label", "maintainer", f"d-{time.monotonic_ns()}"))
    claimed = queue.claim()
    assert claimed.id == job.id
    outcome = Outcome(stop=Stop.RESOLVED, stop_reason="resolved in iteration 1", issue_title=title, issue_number=issue,
                      test_file=f"tests/agentcoder/test_issue_{issue}.py", reproduced=True, branch=f"agentcoder/issue-{issue}",
                      commit="abc123")
    outcome.generated_tests = [GeneratedTest(f"tests/agentcoder/test_issue_{issue}.py::test_empty", "fail_to_pass",
                                             "mean([]) raises ValueError <b>not</b> ZeroDivisionError")]
    outcome.tokens["programmer"] = Usage(1200, 300, 1, 2.0, model, cost_usd=cost)
    queue.record_progress(job.id, "iteration 1: programmer")
    queue.record_outcome(job.id, outcome.to_json() | {"pull_request": 9})
    queue.finish(job.id, "done", "opened PR #9", "resolved")
    return queue.get(job.id)


# -- access ---------------------------------------------------------------------------------------


def test_without_an_admin_token_the_dashboard_and_metrics_are_off(tmp_path, queue):
    finished_job(queue)
    with serving(tmp_path, queue, admin_token=None) as http:
        for path in ("/", "/jobs/1", "/login", "/metrics"):
            assert http.get(path, headers=BEARER).status_code == 404, path
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/", "/jobs/1", "/jobs/1/progress", "/?state=done"])
def test_no_token_shows_the_login_form_and_a_wrong_bearer_token_is_401(client, queue, path):
    finished_job(queue)
    page = client.get(path)
    assert page.status_code == 401 and '<form method="post" action="/login">' in page.text
    assert "mean() crashes" not in page.text and "opened PR" not in page.text
    for header in ({"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN}"},
                   {"Authorization": f"Bearer {ADMIN}x"}, {"Authorization": "Bearer"}):
        refused = client.get(path, headers=header)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert "mean() crashes" not in refused.text
    assert client.get(path, headers=BEARER).status_code == 200
    # A forged cookie is no session.
    client.cookies.set(SESSION_COOKIE, "forged")
    assert client.get(path).status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_logout_needs_the_csrf_field(client, queue):
    finished_job(queue)
    wrong = client.post("/login", data={"token": "nope", "next": "/jobs/1"})
    assert wrong.status_code == 401 and "That is not the admin token." in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    good = client.post("/login", data={"token": ADMIN, "next": "/jobs/1"})
    assert good.status_code == 303 and good.headers["location"] == "/jobs/1"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ADMIN not in cookie  # a derived value, never the token itself
    page = client.get("/jobs/1")
    assert page.status_code == 200 and "mean() crashes" in page.text
    # A cross-site form cannot log the operator out: it does not know the CSRF field.
    assert client.post("/logout", data={"csrf": "guess"}).status_code == 403
    assert client.get("/").status_code == 200
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    out = client.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/").status_code == 401


@pytest.mark.parametrize("target, expected", [
    ("/jobs/3", "/jobs/3"), ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil", "/"),
    ("javascript:alert(1)", "/"), ("", "/"), ("/?state=done&repo=a/b", "/?state=done&repo=a/b"),
])
def test_login_only_ever_redirects_to_a_page_of_this_site(target, expected):
    assert local_path(target) == expected


# -- pages ----------------------------------------------------------------------------------------


def test_untrusted_text_is_escaped_everywhere(client, queue):
    job = finished_job(queue, HOSTILE_TITLE)
    for path in ("/", f"/jobs/{job.id}"):
        page = client.get(path, headers=BEARER)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>not</b>" not in page.text
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_an_unknown_job_is_a_404_page(client, queue):
    finished_job(queue)
    for path in ("/jobs/999", "/jobs/abc", "/jobs/-1", "/jobs/99999999999999999999999"):
        page = client.get(path, headers=BEARER)
        assert page.status_code == 404 and "Not found" in page.text and "Back to the job list" in page.text
    assert client.get("/jobs/999/progress", headers=BEARER).status_code == 404


def test_job_page_shows_log_tests_cost_and_links(client, queue):
    job = finished_job(queue)
    page = client.get(f"/jobs/{job.id}", headers=BEARER).text
    assert "Iteration log" in page and "resolved — resolved in iteration 1" in page
    assert "<code>test_empty</code>" in page and "fail-to-pass" in page
    assert "<td>gpt-4o-mini</td>" in page and "$0.0123" in page
    assert 'href="https://github.com/octo/calc/pull/9"' in page
    assert 'href="https://github.com/octo/calc/issues/7"' in page
    assert 'href="https://github.com/octo/calc/tree/agentcoder/issue-7"' in page
    assert "iteration 1: programmer" in page  # its progress messages


def test_per_test_evidence_is_shown_when_the_log_carries_it(client, queue):
    job = finished_job(queue)
    record = queue.job_record(job.id)
    record.outcome["generated_tests"][0] |= {
        "code": "def test_empty():\n    with pytest.raises(ValueError):\n        mean([])", "before": "failed",
        "before_text": "ZeroDivisionError: division by zero <script>x</script>", "after": "passed", "after_text": ""}
    queue.record_outcome(job.id, record.outcome)
    page = client.get(f"/jobs/{job.id}", headers=BEARER).text
    row = page.split('<tr class="generated-test">', 1)[1].split("</tr>", 1)[0]
    assert "<summary>evidence</summary>" in row and "ZeroDivisionError: division by zero &lt;script&gt;" in row
    assert "with pytest.raises(ValueError):" in row and "<td>failed</td><td>passed</td>" in row


def test_a_model_without_a_price_shows_cost_unknown_and_still_counts_tokens(client, queue):
    job = finished_job(queue, model="local-llama", cost=None)
    assert (job.tokens, job.cost_usd) == (1500, None)
    listing = client.get("/", headers=BEARER).text
    row = listing.split(f'href="/jobs/{job.id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">1,500</td>' in row and '<td class="num">unknown</td>' in row
    assert "1 job(s) of unknown cost" in listing
    page = client.get(f"/jobs/{job.id}", headers=BEARER).text
    assert "<td>local-llama</td>" in page and "cost unknown." in page


def test_job_list_filters_and_totals(client, queue):
    finished_job(queue, repo="octo/calc", issue=1, cost=0.01)
    finished_job(queue, repo="octo/other", issue=2, cost=0.02)
    running = queue.enqueue(Job("octo/calc", 1, 3, "retry", "maintainer", "d-run"))
    queue.claim()
    everything = client.get("/", headers=BEARER).text
    assert everything.count('<tr class="state-') == 3
    totals = everything.split('data-period="24 hours"', 1)[1].split("</dl>", 1)[0]
    assert "<dd>3</dd>" in totals and "<dd>2 (67%)</dd>" in totals and "<dd>3,000</dd>" in totals
    assert "<dd>$0.0300" in totals
    only_running = client.get("/", params={"state": "running"}, headers=BEARER).text
    assert only_running.count('<tr class="state-') == 1 and f'href="/jobs/{running.id}"' in only_running
    other = client.get("/", params={"repo": "octo/other"}, headers=BEARER).text
    assert other.count('<tr class="state-') == 1 and "octo/other" in other
    nothing = client.get("/", params={"repo": "nobody/none"}, headers=BEARER).text
    assert "No jobs match these filters." in nothing


def test_progress_of_a_running_job_is_served_for_the_live_view(client, queue):
    job = queue.enqueue(Job("octo/calc", 1, 4, "label", "maintainer", "d-live"))
    queue.claim()
    queue.record_progress(job.id, "running the existing tests on the unchanged code")
    first = client.get(f"/jobs/{job.id}/progress", headers=BEARER).json()
    assert first["state"] == "running" and not first["final"]
    assert [message for _, message in first["progress"]] == ["running the existing tests on the unchanged code"]
    page = client.get(f"/jobs/{job.id}", headers=BEARER).text
    assert '<script src="/static/dashboard.js" defer></script>' in page and 'data-final="no"' in page
    queue.record_progress(job.id, "test designer: writing tests (attempt 1)")
    assert len(client.get(f"/jobs/{job.id}/progress", headers=BEARER).json()["progress"]) == 2
    assert client.get("/static/dashboard.js").status_code == 200


# -- /metrics -------------------------------------------------------------------------------------


def test_metrics_need_the_bearer_token_and_parse_as_prometheus_text(client, queue):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    queue.enqueue(Job("octo/calc", 1, 5, "label", "maintainer", "d-queued"))
    text = client.get("/metrics", headers=BEARER).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    jobs = {sample.labels["state"]: sample.value for sample in families["agentcoder_jobs"].samples}
    assert jobs == {"queued": 1.0, "running": 0.0}
    for name in ("agentcoder_webhook_deliveries", "agentcoder_jobs_finished", "agentcoder_job_duration_seconds",
                 "agentcoder_job_queue_wait_seconds", "agentcoder_sandbox_run_duration_seconds",
                 "agentcoder_model_calls", "agentcoder_model_tokens", "agentcoder_model_cost_usd"):
        assert name in families, name


def test_metrics_count_jobs_deliveries_and_model_use():
    metrics = Metrics(lambda: {"running": 2})
    job = Job("octo/calc", 1, 5, "label", "m", "d", id=1, created_at=100.0, started_at=103.0)
    metrics.job_finished(job, "done", JobResult("opened PR #2", "resolved"), finished_at=163.0)
    metrics.delivery("issues", "queued")
    metrics.model_call("programmer", "gpt-4o-mini", 1000, 200, 0.00027)
    metrics.model_call("test_designer", "local", 10, 20, None)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.exposition().decode()) for s in family.samples}
    assert samples[("agentcoder_jobs_finished_total", (("state", "done"), ("stop", "resolved"), ("trigger", "label")))] == 1
    assert samples[("agentcoder_job_duration_seconds_sum", (("trigger", "label"),))] == 60.0
    assert samples[("agentcoder_job_queue_wait_seconds_sum", ())] == 3.0
    assert samples[("agentcoder_webhook_deliveries_total", (("event", "issues"), ("outcome", "queued")))] == 1
    assert samples[("agentcoder_model_tokens_total", (("agent", "programmer"), ("kind", "prompt"), ("model", "gpt-4o-mini")))] == 1000
    assert samples[("agentcoder_model_cost_usd_total", (("agent", "programmer"), ("model", "gpt-4o-mini")))] == pytest.approx(0.00027)
    assert samples[("agentcoder_model_unpriced_calls_total", (("agent", "test_designer"), ("model", "local")))] == 1
    assert samples[("agentcoder_jobs", (("state", "running"),))] == 2


def test_a_store_written_by_an_older_version_gains_the_dashboard_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, installation_id INTEGER NOT NULL,
            issue_number INTEGER NOT NULL, trigger TEXT NOT NULL, sender TEXT NOT NULL, delivery_id TEXT NOT NULL,
            guidance TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL,
            finished_at REAL, detail TEXT NOT NULL DEFAULT '', cancel_requested INTEGER NOT NULL DEFAULT 0,
            cancel_reason TEXT NOT NULL DEFAULT '');
        INSERT INTO jobs (repo, installation_id, issue_number, trigger, sender, delivery_id, state, created_at, detail)
            VALUES ('octo/calc', 1, 3, 'label', 'maintainer', 'old-delivery', 'done', 1.0, 'opened PR #4');
    """)
    old.close()
    queue = SqliteQueue(path)
    try:
        [job] = queue.recent()
        assert (job.detail, job.stop, job.title, job.tokens, job.cost_usd) == ("opened PR #4", None, "", None, None)
        record = queue.job_record(job.id)
        assert record.outcome is None and record.progress == []
        queue.record_outcome(job.id, {"issue_title": "late", "iterations": [{}], "total_tokens": 5, "cost_usd": 0.5})
        assert queue.get(job.id).title == "late" and queue.totals(0).cost_usd == 0.5
    finally:
        queue.close()


def test_a_job_the_loop_never_ran_for_has_a_page_without_a_log(client, queue):
    job = queue.enqueue(Job("octo/calc", 1, 6, "label", "outsider", "d-refused"))
    queue.claim()
    queue.finish(job.id, "done", "refused: @outsider, AgentCoder only acts for people with write access")
    page = client.get(f"/jobs/{job.id}", headers=BEARER)
    assert page.status_code == 200 and "The loop did not run for this job" in page.text
    assert "refused: @outsider" in page.text and "Iteration log" not in page.text
    row = client.get("/", headers=BEARER).text.split(f'href="/jobs/{job.id}"', 1)[1].split("</tr>", 1)[0]
    assert row.count('<td class="num">—</td>') == 3  # iterations, tokens and cost: the loop did not run

"""The webhook edge over real HTTP: uvicorn on 127.0.0.1, httpx, deliveries signed like GitHub's."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bot.app.queue import Job, JobResult
from bot.app.sqlite_queue import SqliteQueue
from bot.app.workers import WorkerPool
from bot.config import ConfigError, load_settings
from bot.dev.serving import ThreadedServer
from tests.payloads import comment, labeled, user
from webhooks import signature as signature_module
from webhooks.app import create_app

SECRET = "It's a Secret to Everybody"
ADMIN = "admin-token-for-tests-0123456789"
BOT = "agentcoder[bot]"


@contextmanager
def serving(app) -> Iterator[httpx.Client]:
    """Run `app` under uvicorn on an ephemeral 127.0.0.1 port; yield a client for it."""
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client

def settings(tmp_path: Path, **overrides):
    values = {"webhook_secret": SECRET, "admin_token": ADMIN, "database_url": f"sqlite:///{tmp_path}/jobs.db"}
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def client(tmp_path: Path, queue) -> Iterator[httpx.Client]:
    with serving(create_app(settings(tmp_path), queue, bot_login=BOT)) as http:
        yield http


def deliver(client: httpx.Client, event: str, payload: dict, *, delivery: str | None = None,
            secret: str = SECRET, signature: str | None = None, sha256: bool = True) -> httpx.Response:
    """POST a delivery the way GitHub does: raw JSON body, event and delivery headers, HMAC signatures."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature": signature_module.sign_legacy(secret, body),
    }
    if sha256:
        headers["X-Hub-Signature-256"] = signature or signature_module.sign(secret, body)
    return client.post("/webhooks", content=body, headers=headers)


def test_a_signed_label_delivery_queues_a_job_and_answers_202(client, queue):
    response = deliver(client, "issues", labeled(), delivery="delivery-1")
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "job": queue.recent()[0].id}
    [stored] = queue.recent()
    assert (stored.repo, stored.installation_id, stored.issue_number, stored.trigger, stored.sender,
            stored.delivery_id, stored.state) == ("octo/widgets", 4242, 7, "label", "maint", "delivery-1", "queued")


def test_missing_signature_is_401_and_queues_nothing(client, queue):
    response = deliver(client, "issues", labeled(), sha256=False, delivery="d-missing")
    assert response.status_code == 401
    assert queue.recent() == []


def test_sha1_signature_alone_is_not_accepted(client, queue):
    # deliver() always sends a correct X-Hub-Signature (SHA-1); without the SHA-256 header it must not count.
    response = deliver(client, "issues", labeled(), sha256=False)
    assert response.status_code == 401
    sha1_in_sha256_header = deliver(client, "issues", labeled(), signature="sha1=" + "0" * 40)
    assert sha1_in_sha256_header.status_code == 401
    assert queue.recent() == []


@pytest.mark.parametrize("forged", ["wrong secret", "bare hex", "empty", "tampered body"])
def test_forged_signatures_are_401_and_do_not_burn_the_delivery_id(client, queue, forged):
    body = json.dumps(labeled()).encode()
    signature = {
        "wrong secret": signature_module.sign("not the secret", body),
        "bare hex": signature_module.sign(SECRET, body)[len("sha256="):],
        "empty": "",
        "tampered body": signature_module.sign(SECRET, body.replace(b"maint", b"mallory")),
    }[forged]
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-forged", "X-Hub-Signature-256": signature}
    assert client.post("/webhooks", content=body, headers=headers).status_code == 401
    assert queue.recent() == []
    # The real delivery with that id still gets through afterwards.
    assert deliver(client, "issues", labeled(), delivery="d-forged").status_code == 202


def test_a_redelivery_is_answered_duplicate_and_queues_one_job(client, queue):
    first = deliver(client, "issues", labeled(), delivery="same-delivery")
    again = deliver(client, "issues", labeled(), delivery="same-delivery")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert len(queue.recent()) == 1


def test_ping_is_acknowledged_and_ignored(client, queue):
    ping = {"zen": "Design for failure.", "hook_id": 1, "hook": {"type": "App"},
            "sender": {"login": "maint", "type": "User"}}
    response = deliver(client, "ping", ping)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert queue.recent() == []


@pytest.mark.parametrize("sender, sender_type", [("agentcoder[bot]", "Bot"), ("renovate[bot]", "Bot"), ("robo", "Bot")])
def test_bot_senders_are_ignored(client, queue, sender, sender_type):
    response = deliver(client, "issues", labeled(sender=user(sender, sender_type)))
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert queue.recent() == []


def test_retry_by_a_human_on_the_bots_pr_queues_a_retry_job_with_guidance(client, queue):
    response = deliver(client, "issue_comment", comment("/agentcoder retry keep the public API unchanged"))
    assert response.status_code == 202
    [stored] = queue.recent()
    assert (stored.trigger, stored.issue_number, stored.guidance) == ("retry", 12, "keep the public API unchanged")


def test_retry_on_a_pr_the_bot_did_not_open_is_ignored(client, queue):
    response = deliver(client, "issue_comment", comment("/agentcoder retry", pr_author="alice"))
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert queue.recent() == []


def test_a_second_trigger_for_the_same_issue_supersedes_the_queued_first(client, queue):
    first = deliver(client, "issues", labeled(issue=9)).json()["job"]
    second = deliver(client, "issues", labeled(issue=9)).json()["job"]
    # Nothing changes before a sender is checked...
    assert [j.state for j in queue.recent()] == ["queued", "queued"]
    # ...then the checked second trigger supersedes the first, and only it runs.
    ran: list[int] = []
    pool = WorkerPool(queue, lambda job, cancelled: ran.append(job.id) or JobResult("ok"), concurrency=1,
                      admission=lambda job: None)
    assert pool.run_until_idle() == 1 and ran == [second]
    jobs = {j.id: j for j in queue.recent()}
    assert jobs[first].state == "cancelled" and jobs[first].detail == f"superseded by job {second}"
    assert jobs[second].state == "done"


def test_a_refused_trigger_supersedes_nothing(client, queue):
    first = deliver(client, "issues", labeled(issue=9)).json()["job"]
    stranger = deliver(client, "issues", labeled(issue=9)).json()["job"]
    ran: list[int] = []
    pool = WorkerPool(queue, lambda job, cancelled: ran.append(job.id) or JobResult("ok"), concurrency=1,
                      admission=lambda job: "no write access" if job.id == stranger else None)
    assert pool.run_until_idle() == 1 and ran == [first]
    jobs = {j.id: j for j in queue.recent()}
    assert (jobs[first].state, jobs[first].detail) == ("done", "ok")
    assert (jobs[stranger].state, jobs[stranger].detail) == ("done", "refused: no write access")


def test_a_body_that_is_not_json_is_400(client, queue):
    body = b"{not json"
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-bad", "X-Hub-Signature-256": signature_module.sign(SECRET, body)}
    response = client.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 400
    assert queue.recent() == []


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_jobs_api_needs_the_admin_token(client, queue):
    job_id = deliver(client, "issues", labeled()).json()["job"]
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": f"Basic {ADMIN}"}).status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {ADMIN}x"}).status_code == 401
    response = client.get("/api/jobs", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200
    [listed] = response.json()
    assert listed["id"] == job_id
    assert {k: listed[k] for k in ("repo", "issue", "trigger", "state", "started_at", "finished_at", "detail")} == {
        "repo": "octo/widgets", "issue": 7, "trigger": "label", "state": "queued",
        "started_at": None, "finished_at": None, "detail": "",
    }
    assert isinstance(listed["created_at"], float)


def test_jobs_api_is_off_without_an_admin_token(tmp_path, queue):
    with serving(create_app(settings(tmp_path, admin_token=None), queue, bot_login=BOT)) as http:
        assert http.get("/api/jobs").status_code == 404
        assert http.get("/api/jobs", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404


def test_create_app_refuses_to_run_without_a_webhook_secret(tmp_path, queue):
    with pytest.raises(ConfigError, match="AGENTCODER_WEBHOOK_SECRET"):
        create_app(settings(tmp_path, webhook_secret=None), queue, bot_login=BOT)


def test_an_unexpected_error_is_a_one_line_500_logged_without_secrets(tmp_path, caplog):
    broken = SqliteQueue(tmp_path / "broken.db")
    broken.close()  # every queue call now raises sqlite3.ProgrammingError
    caplog.set_level("INFO")
    with serving(create_app(settings(tmp_path), broken, bot_login=BOT)) as http:
        response = deliver(http, "issues", labeled())
        listing = http.get("/api/jobs", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (ProgrammingError)"}
    assert listing.status_code == 500
    assert "POST /webhooks failed: ProgrammingError" in caplog.text
    assert SECRET not in caplog.text and ADMIN not in caplog.text
    assert "Traceback" not in caplog.text


def test_on_enqueue_wakes_a_worker_and_the_job_runs(tmp_path, queue):
    ran = threading.Event()
    pool = WorkerPool(queue, lambda job, cancelled: ran.set() or JobResult("done"), concurrency=1, poll_interval_s=30)
    seen: list[Job] = []

    def on_enqueue(job: Job) -> None:
        seen.append(job)
        pool.wake()

    pool.start()
    try:
        with serving(create_app(settings(tmp_path), queue, bot_login=BOT, on_enqueue=on_enqueue)) as http:
            job_id = deliver(http, "issues", labeled()).json()["job"]
            assert ran.wait(5), "the worker was not woken"
    finally:
        assert pool.stop(timeout=5)
    assert [job.id for job in seen] == [job_id]


def test_a_job_acknowledged_before_a_restart_runs_after_it(tmp_path):
    path = tmp_path / "jobs.db"
    first_process = SqliteQueue(path)
    with serving(create_app(settings(tmp_path), first_process, bot_login=BOT)) as http:
        queued = deliver(http, "issues", labeled(issue=1)).json()["job"]
        running = deliver(http, "issues", labeled(issue=2)).json()["job"]
    assert first_process.claim() is None  # nothing runs before its sender is checked
    assert first_process.admit(first_process.claim_unadmitted().id)
    assert first_process.claim().id == queued  # a worker checked and took job 1, then the process died
    first_process.close()

    second_process = SqliteQueue(path)
    assert second_process.requeue_interrupted() == 1
    ran: list[int] = []
    pool = WorkerPool(second_process, lambda job, cancelled: ran.append(job.id) or JobResult("ok"), concurrency=2)
    assert pool.run_until_idle() == 2
    assert sorted(ran) == sorted([queued, running])
    assert {j.id: j.state for j in second_process.recent()} == {queued: "done", running: "done"}
    # A redelivery of an acknowledged delivery is still a duplicate after the restart.
    with serving(create_app(settings(tmp_path), second_process, bot_login=BOT)) as http:
        assert deliver(http, "issues", labeled(issue=1), delivery=second_process.get(queued).delivery_id).json() == {
            "status": "duplicate"
        }
    second_process.close()

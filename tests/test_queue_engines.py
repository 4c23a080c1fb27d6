"""The same queue semantics on both engines: the embedded SQLite file and PostgreSQL with procrastinate.

Every test here runs twice (`database_url` is parametrized): against a SQLite file and against a new
database of a real, throw-away PostgreSQL cluster. Workers are real threads and real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

from bot.app.engines import queue_from_url
from bot.app.queue import Job, JobResult
from bot.app.workers import WorkerPool
from bot.config import load_settings
from bot.dev.serving import ThreadedServer
from webhooks.app import create_app
from webhooks.signature import sign

SECRET, ADMIN = "engine-secret", "engine-admin-token-0123456789"
# The silence after which the tests below call a worker dead; a dead worker has been silent a little longer.
DEAD_AFTER_S = 0.2
SILENT_S = DEAD_AFTER_S + 0.1


def job(issue: int = 1, repo: str = "octo/widgets", delivery: str = "d") -> Job:
    return Job(repo=repo, installation_id=99, issue_number=issue, trigger="label", sender="maint",
               delivery_id=delivery)


def wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def queue(database_url):
    q = queue_from_url(database_url)
    yield q
    q.close()


def labeled(issue: int) -> bytes:
    return json.dumps({
        "action": "labeled", "label": {"name": "agentcoder"},
        "issue": {"number": issue, "title": "t", "body": "b", "user": {"login": "maint", "type": "User"}},
        "repository": {"full_name": "octo/widgets"}, "installation": {"id": 99},
        "sender": {"login": "maint", "type": "User"},
    }).encode()


def post(client: httpx.Client, body: bytes, delivery: str) -> httpx.Response:
    return client.post("/webhooks", content=body, headers={
        "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(SECRET, body),
        "Content-Type": "application/json"})


def test_a_delivery_seen_twice_makes_one_job_and_api_jobs_lists_it(database_url, queue):
    settings = load_settings(webhook_secret=SECRET, admin_token=ADMIN, database_url=database_url)
    with ThreadedServer(create_app(settings, queue, bot_login="agentcoder[bot]")) as server, \
            httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        first = post(client, labeled(5), "delivery-1")
        again = post(client, labeled(5), "delivery-1")
        listed = client.get("/api/jobs", headers={"Authorization": f"Bearer {ADMIN}"})
    assert first.status_code == 202 and again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert listed.status_code == 200
    (only,) = listed.json()
    # Exactly these keys and values on either engine.
    assert set(only) == {"id", "repo", "issue", "trigger", "state", "created_at", "started_at", "finished_at", "detail"}
    assert (only["id"], only["repo"], only["issue"], only["trigger"], only["state"], only["detail"]) == (
        first.json()["job"], "octo/widgets", 5, "label", "queued", "")
    assert isinstance(only["created_at"], float) and only["started_at"] is None


def test_api_jobs_shows_finished_jobs_alike(database_url, queue):
    done, failed = queue.enqueue(job(1)), queue.enqueue(job(2))
    worker = queue.register_worker()
    queue.claim(worker), queue.claim(worker)
    queue.finish(done.id, "done", "opened PR #3", "resolved", worker_id=worker)
    queue.finish(failed.id, "failed", "RuntimeError: boom", worker_id=worker)
    jobs = {j.id: j for j in queue.recent()}
    assert (jobs[done.id].state, jobs[done.id].detail, jobs[done.id].stop) == ("done", "opened PR #3", "resolved")
    assert (jobs[failed.id].state, jobs[failed.id].stop) == ("failed", None)
    assert jobs[done.id].finished_at >= jobs[done.id].started_at >= jobs[done.id].created_at
    assert [j.id for j in queue.recent(1)] == [failed.id]


def test_a_new_trigger_cancels_the_queued_job_and_flags_the_running_one(queue):
    running = queue.enqueue(job(7, delivery="a"))
    worker = queue.register_worker()
    assert queue.claim(worker).id == running.id
    queued = queue.enqueue(job(7, delivery="b"))
    newest = queue.enqueue(job(7, delivery="c"))
    assert queue.get(queued.id).state == "cancelled"
    assert queue.get(queued.id).detail == f"superseded by job {newest.id}"
    assert queue.is_cancelled(running.id) and not queue.is_cancelled(newest.id)
    assert queue.claim(worker) is None  # one running job per issue: the newest waits
    assert queue.finish(running.id, "cancelled", "stopped after iteration 1", worker_id=worker)
    assert queue.get(running.id).detail == f"superseded by job {newest.id}: stopped after iteration 1"
    assert queue.claim(worker).id == newest.id


def test_a_trigger_not_yet_admitted_changes_nothing_and_is_not_run(queue):
    running = queue.enqueue(job(7, delivery="a"))
    worker = queue.register_worker()
    assert queue.claim(worker).id == running.id
    queued = queue.enqueue(job(8, delivery="b"))
    stranger = queue.enqueue(job(7, delivery="c"), admitted=False)
    assert not queue.is_cancelled(running.id) and queue.get(stranger.id).state == "queued"
    assert queue.claim(worker).id == queued.id  # the unadmitted one is never claimed to run
    checking = queue.claim_unadmitted(worker)
    assert (checking.id, checking.state) == (stranger.id, "admitting")
    assert queue.get(stranger.id).state == "admitting" and queue.claim_unadmitted(worker) is None
    assert queue.finish(stranger.id, "done", "refused: no write access")
    assert not queue.is_cancelled(running.id)  # a refused trigger cancelled nothing
    assert queue.get(stranger.id).detail == "refused: no write access"


def test_an_admitted_trigger_supersedes_then_waits_its_turn(queue):
    running = queue.enqueue(job(7, delivery="a"))
    worker = queue.register_worker()
    assert queue.claim(worker).id == running.id
    older = queue.enqueue(job(7, delivery="b"))
    newer = queue.enqueue(job(7, delivery="c"), admitted=False)
    assert queue.claim_unadmitted(worker).id == newer.id
    assert queue.admit(newer.id)
    assert queue.is_cancelled(running.id) and queue.get(older.id).state == "cancelled"
    assert queue.get(older.id).detail == f"superseded by job {newer.id}"
    assert queue.get(newer.id).state == "queued" and queue.claim(worker) is None  # the running one ends first
    assert queue.finish(running.id, "cancelled", worker_id=worker)
    assert queue.claim(worker).id == newer.id


def test_an_older_trigger_admitted_after_a_newer_one_is_superseded_by_it(queue):
    worker = queue.register_worker()
    first = queue.enqueue(job(5, delivery="a"), admitted=False)
    second = queue.enqueue(job(5, delivery="b"), admitted=False)
    assert queue.claim_unadmitted(worker).id == first.id
    assert queue.claim_unadmitted(worker).id == second.id
    assert queue.admit(second.id)
    assert not queue.admit(first.id)
    assert (queue.get(first.id).state, queue.get(first.id).detail) == ("cancelled", f"superseded by job {second.id}")
    assert queue.claim(worker).id == second.id and queue.claim(worker) is None


def test_a_check_cut_short_by_a_dead_worker_is_done_again(database_url, queue):
    stored = queue.enqueue(job(6), admitted=False)
    gone = queue_from_url(database_url)
    worker = gone.register_worker()
    assert gone.claim_unadmitted(worker).id == stored.id
    gone.close()  # this worker never sends another heartbeat
    time.sleep(SILENT_S)
    queue.recover_stalled(DEAD_AFTER_S)
    assert queue.get(stored.id).state == "queued"
    assert queue.claim_unadmitted(queue.register_worker()).id == stored.id


def test_the_running_job_notices_within_seconds_and_the_newer_one_runs_after_it(queue):
    noticed = threading.Event()
    seen: list[int] = []

    def handler(j: Job, is_cancelled) -> JobResult:
        seen.append(j.id)
        if len(seen) == 1:
            wait_for(is_cancelled, what="the cancel flag")
            noticed.set()
            return JobResult("stopped early", "cancelled")
        return JobResult("opened PR #9", "resolved")

    first = queue.enqueue(job(4, delivery="one"))
    pool = WorkerPool(queue, handler, concurrency=2, poll_interval_s=0.02, heartbeat_s=0.5, stalled_after_s=5)
    pool.start()
    try:
        wait_for(lambda: queue.get(first.id).state == "running")
        second = queue.enqueue(job(4, delivery="two"))
        pool.wake()
        assert noticed.wait(5)
        wait_for(lambda: queue.get(second.id).state == "done")
    finally:
        assert pool.stop(timeout=5)
    assert seen == [first.id, second.id]
    assert queue.get(first.id).state == "cancelled"
    assert queue.get(second.id).started_at >= queue.get(first.id).finished_at


def test_one_running_job_per_issue_but_other_issues_go_ahead(queue):
    a = queue.enqueue(job(1, repo="octo/a"))
    worker = queue.register_worker()
    assert queue.claim(worker).id == a.id
    b = queue.enqueue(job(1, repo="octo/b"))  # the same number in another repository is another issue
    c = queue.enqueue(job(2, repo="octo/a"))
    assert {queue.claim(worker).id, queue.claim(worker).id} == {b.id, c.id}
    assert queue.claim(worker) is None


def test_two_workers_racing_for_one_job_one_wins(database_url, queue):
    stored = queue.enqueue(job(1))
    contenders = [queue_from_url(database_url) for _ in range(6)]  # separate connections, as separate machines
    barrier = threading.Barrier(len(contenders))
    won: list[int] = []

    def race(q) -> None:
        worker = q.register_worker()
        barrier.wait()
        claimed = q.claim(worker)
        if claimed is not None:
            won.append(claimed.id)

    threads = [threading.Thread(target=race, args=(q,)) for q in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for q in contenders:
        q.close()
    assert won == [stored.id]


DEAD_WORKER = textwrap.dedent("""
    import sys, threading
    from bot.app.engines import queue_from_url
    from bot.app.workers import WorkerPool

    def handler(job, is_cancelled):
        print("running", job.id, flush=True)
        threading.Event().wait()

    queue = queue_from_url(sys.argv[1])
    WorkerPool(queue, handler, concurrency=1, poll_interval_s=0.05, heartbeat_s=0.2, stalled_after_s=1).start()
    threading.Event().wait()
""")


def test_a_job_of_a_worker_killed_with_sigkill_runs_again_on_another_worker(database_url, queue):
    stored = queue.enqueue(job(3))
    dead = subprocess.Popen([sys.executable, "-c", DEAD_WORKER, database_url], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert dead.stdout.readline().split() == ["running", str(stored.id)]
    finally:
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait(10)
    killed_at = time.monotonic()
    assert queue.get(stored.id).state == "running"
    reruns: list[Job] = []
    pool = WorkerPool(queue, lambda j, c: reruns.append(j) or JobResult("done"), concurrency=1,
                      poll_interval_s=0.05, heartbeat_s=0.2, stalled_after_s=1)
    pool.start()
    try:
        wait_for(lambda: queue.get(stored.id).state == "done", timeout=20, what="the rerun")
    finally:
        assert pool.stop(timeout=5)
    recovered_in = time.monotonic() - killed_at
    assert [(j.id, j.restarts) for j in reruns] == [(stored.id, 1)]
    assert queue.get(stored.id).restarts == 1
    # Heartbeats every 0.2 s, dead after 1 s: recovery needs 1 s of silence, at most about 1.5 s in all.
    assert recovered_in >= 0.75


def test_a_superseded_job_of_a_dead_worker_is_not_run_again(database_url, queue):
    first = queue.enqueue(job(3))
    gone = queue_from_url(database_url)
    worker = gone.register_worker()
    assert gone.claim(worker).id == first.id
    gone.close()  # this worker never sends another heartbeat
    second = queue.enqueue(job(3))
    time.sleep(SILENT_S)
    assert queue.recover_stalled(DEAD_AFTER_S) == []
    assert queue.get(first.id).state == "cancelled"
    assert queue.get(first.id).detail == f"superseded by job {second.id}"
    assert queue.claim(queue.register_worker()).id == second.id


def test_a_live_worker_keeps_its_job(database_url, queue):
    stored = queue.enqueue(job(3))
    worker = queue.register_worker()
    assert queue.claim(worker).id == stored.id
    # Silent long enough to be called dead, but for the heartbeat; the window is wider than the dead tests' so
    # that a pause of the machine between the heartbeat and the check does not make this worker look dead.
    time.sleep(0.6)
    queue.heartbeat(worker)
    assert queue.recover_stalled(0.5) == []
    assert queue.get(stored.id).state == "running"


def test_a_delivery_id_is_recorded_once_across_concurrent_requests(database_url, queue):
    others = [queue_from_url(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(others))
    results: list[bool] = []

    def record(q) -> None:
        barrier.wait()
        results.append(q.record_delivery("same-id"))

    threads = [threading.Thread(target=record, args=(q,)) for q in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for q in others:
        q.close()
    assert sorted(results) == [False, False, False, True]
    queue.forget_delivery("same-id")
    assert queue.record_delivery("same-id") is True


def test_the_dashboard_reads_the_same_from_either_engine(queue):
    from bot.app.queue import PROGRESS_MESSAGES_KEPT

    first, second, other = queue.enqueue(job(1)), queue.enqueue(job(2)), queue.enqueue(job(3, repo="octo/other"))
    worker = queue.register_worker()
    assert queue.claim(worker).id == first.id
    for n in range(PROGRESS_MESSAGES_KEPT + 5):
        queue.record_progress(first.id, f"step {n} " + "x" * 600)
    queue.record_outcome(first.id, {"issue_title": "mean() crashes", "iterations": [{}, {}], "total_tokens": 1234,
                                    "cost_usd": 0.5, "stop": "resolved"})
    queue.finish(first.id, "done", "opened PR #4", "resolved", worker_id=worker)
    record = queue.job_record(first.id)
    assert (record.job.title, record.job.iterations, record.job.tokens, record.job.cost_usd) == (
        "mean() crashes", 2, 1234, 0.5)
    assert record.outcome["total_tokens"] == 1234
    assert len(record.progress) == PROGRESS_MESSAGES_KEPT and record.progress[-1][1].startswith("step 204 ")
    assert all(len(message) == 500 for _, message in record.progress)
    assert queue.job_record(second.id).outcome is None and queue.job_record(999_999) is None
    assert queue.count_by_state() == {"done": 1, "queued": 2}
    assert [j.id for j in queue.recent(state="queued")] == [other.id, second.id]
    assert [j.id for j in queue.recent(repo="octo/other")] == [other.id]
    totals = queue.totals(since=0)
    assert (totals.jobs, totals.resolved, totals.tokens, totals.cost_usd, totals.unpriced) == (3, 1, 1234, 0.5, 0)

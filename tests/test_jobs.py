"""The SQLite job queue and the worker pool, on real files and real threads."""

from __future__ import annotations

import threading
import time

import pytest

from bot.app.engines import queue_from_url
from bot.app.queue import Job, JobResult
from bot.app.sqlite_queue import SqliteQueue
from bot.app.workers import WorkerPool
from bot.config import ConfigError
from bot.redact import describe_error


def job(issue: int = 1, repo: str = "octo/widgets", trigger: str = "label", delivery: str = "d") -> Job:
    return Job(repo=repo, installation_id=99, issue_number=issue, trigger=trigger, sender="maint",
               delivery_id=delivery)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_enqueue_stores_a_queued_job_with_an_id_and_timestamp(queue):
    before = time.time()
    stored = queue.enqueue(job(3))
    assert stored.id is not None and stored.state == "queued" and stored.created_at >= before
    assert stored.issue_number == 3
    assert queue.recent() == [stored]


def test_claim_takes_the_oldest_queued_job_and_marks_it_running(queue):
    first = queue.enqueue(job(1))
    second = queue.enqueue(job(2))
    claimed = queue.claim()
    assert claimed.id == first.id and claimed.state == "running" and claimed.started_at is not None
    assert queue.claim().id == second.id
    assert queue.claim() is None
    assert [j.state for j in queue.recent()] == ["running", "running"]


def test_finish_records_the_final_state_and_detail(queue):
    stored = queue.enqueue(job())
    queue.claim()
    queue.finish(stored.id, "done", "opened PR #5")
    finished = queue.get(stored.id)
    assert finished.state == "done" and finished.detail == "opened PR #5" and finished.finished_at is not None
    with pytest.raises(ValueError):
        queue.finish(stored.id, "running")


def test_recent_lists_newest_first_and_honours_the_limit(queue):
    ids = [queue.enqueue(job(n)).id for n in range(1, 6)]
    assert [j.id for j in queue.recent(3)] == ids[::-1][:3]


def test_record_delivery_is_true_once_and_survives_a_restart(tmp_path):
    path = tmp_path / "jobs.db"
    queue = SqliteQueue(path)
    assert queue.record_delivery("abc") is True
    assert queue.record_delivery("abc") is False
    assert queue.record_delivery("def") is True
    queue.close()
    reopened = SqliteQueue(path)
    assert reopened.record_delivery("abc") is False
    reopened.forget_delivery("abc")
    assert reopened.record_delivery("abc") is True
    reopened.close()


def test_record_delivery_is_atomic_across_threads(queue):
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def record() -> None:
        barrier.wait()
        results.append(queue.record_delivery("same-id"))

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_second_trigger_for_the_same_issue_cancels_the_queued_first(queue):
    first = queue.enqueue(job(7, delivery="one"))
    other_issue = queue.enqueue(job(8))
    second = queue.enqueue(job(7, delivery="two"))
    cancelled = queue.get(first.id)
    assert cancelled.state == "cancelled" and cancelled.detail == f"superseded by job {second.id}"
    assert cancelled.finished_at is not None
    assert queue.get(other_issue.id).state == "queued"
    assert {queue.claim().id, queue.claim().id} == {other_issue.id, second.id}


def test_the_same_issue_number_in_another_repository_is_not_superseded(queue):
    first = queue.enqueue(job(7, repo="octo/a"))
    queue.enqueue(job(7, repo="octo/b"))
    assert queue.get(first.id).state == "queued"


def test_a_second_trigger_flags_the_running_first_and_waits_for_it(queue):
    first = queue.enqueue(job(7))
    assert queue.claim().id == first.id
    assert queue.is_cancelled(first.id) is False
    second = queue.enqueue(job(7))
    assert queue.is_cancelled(first.id) is True
    assert queue.is_cancelled(second.id) is False
    # One job per issue at a time: the successor waits until the flagged job has stopped.
    assert queue.claim() is None
    queue.finish(first.id, "cancelled", "stopped after iteration 2")
    stopped = queue.get(first.id)
    assert stopped.state == "cancelled"
    assert stopped.detail == f"superseded by job {second.id}: stopped after iteration 2"
    assert queue.claim().id == second.id


def test_restart_requeues_a_job_left_running_and_a_new_pool_runs_it(tmp_path):
    path = tmp_path / "jobs.db"
    dead = SqliteQueue(path)
    interrupted = dead.enqueue(job(1))
    waiting = dead.enqueue(job(2))
    assert dead.claim().id == interrupted.id
    dead.close()  # the process dies with job 1 running and job 2 queued

    queue = SqliteQueue(path)
    assert queue.requeue_interrupted() == 1
    assert queue.get(interrupted.id).state == "queued" and queue.get(interrupted.id).started_at is None
    ran: list[int] = []
    pool = WorkerPool(queue, lambda j, cancelled: ran.append(j.id) or JobResult(f"ran {j.id}"), concurrency=1)
    assert pool.run_until_idle() == 2
    assert ran == [interrupted.id, waiting.id]
    assert [queue.get(i).state for i in ran] == ["done", "done"]
    assert queue.get(interrupted.id).detail == f"ran {interrupted.id}"
    queue.close()


def test_restart_cancels_an_interrupted_job_that_was_already_superseded(tmp_path):
    path = tmp_path / "jobs.db"
    dead = SqliteQueue(path)
    first = dead.enqueue(job(1))
    dead.claim()
    second = dead.enqueue(job(1))
    dead.close()

    queue = SqliteQueue(path)
    assert queue.requeue_interrupted() == 0
    assert queue.get(first.id).state == "cancelled"
    assert queue.get(first.id).detail == f"superseded by job {second.id}"
    assert queue.claim().id == second.id
    queue.close()


def test_pool_runs_jobs_concurrently_up_to_the_setting(queue):
    concurrency = 3
    barrier = threading.Barrier(concurrency, timeout=5)
    lock = threading.Lock()
    in_flight = [0, 0]  # now, highest

    def handler(j: Job, is_cancelled) -> JobResult:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        barrier.wait()  # only returns once `concurrency` jobs run at the same time
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return JobResult("ok")

    ids = [queue.enqueue(job(n)).id for n in range(1, 7)]
    pool = WorkerPool(queue, handler, concurrency=concurrency, poll_interval_s=0.01)
    pool.start()
    try:
        wait_for(lambda: all(queue.get(i).state in ("done", "failed") for i in ids))
    finally:
        assert pool.stop(timeout=5)
    assert [queue.get(i).state for i in ids] == ["done"] * 6
    assert in_flight[1] == concurrency


def test_a_handler_exception_fails_the_job_with_a_one_line_detail_and_the_pool_goes_on(queue, caplog):
    def handler(j: Job, is_cancelled) -> JobResult:
        if j.issue_number == 1:
            raise RuntimeError("git push failed\nfatal: https://x-access-token:ghs_abcdefghijklmnop@127.0.0.1/o/r")
        return JobResult("fine")

    bad = queue.enqueue(job(1))
    good = queue.enqueue(job(2))
    caplog.set_level("INFO", logger="bot.app.queue")
    assert WorkerPool(queue, handler, concurrency=1).run_until_idle() == 2
    failed = queue.get(bad.id)
    assert failed.state == "failed"
    assert failed.detail == "RuntimeError: git push failed fatal: https://***@127.0.0.1/o/r"
    assert "\n" not in failed.detail
    assert queue.get(good.id).state == "done"
    assert "ghs_abcdefghijklmnop" not in caplog.text
    assert f"job {bad.id} failed: RuntimeError" in caplog.text


def test_a_job_whose_cancel_flag_is_set_while_running_finishes_cancelled(queue):
    seen_cancel: list[bool] = []
    entered = threading.Event()
    first = queue.enqueue(job(1))

    def handler(j: Job, is_cancelled) -> JobResult:
        if j.id == first.id:
            entered.set()
            wait_for(is_cancelled)
            seen_cancel.append(is_cancelled())
            return JobResult("stopped early")
        return JobResult("second run")

    pool = WorkerPool(queue, handler, concurrency=2, poll_interval_s=0.01)
    pool.start()
    try:
        assert entered.wait(5)
        second = queue.enqueue(job(1))
        pool.wake()
        wait_for(lambda: queue.get(second.id).state == "done")
    finally:
        assert pool.stop(timeout=5)
    assert seen_cancel == [True]
    cancelled = queue.get(first.id)
    assert cancelled.state == "cancelled"
    assert cancelled.detail == f"superseded by job {second.id}: stopped early"
    # The successor started only after the superseded job had stopped.
    assert queue.get(second.id).started_at >= cancelled.finished_at


def test_a_started_pool_picks_up_jobs_queued_later(queue):
    pool = WorkerPool(queue, lambda j, c: JobResult("ok"), concurrency=2, poll_interval_s=5)
    pool.start()
    try:
        stored = queue.enqueue(job(1))
        pool.wake()  # without this, the long poll interval would make the wait below fail
        wait_for(lambda: queue.get(stored.id).state == "done", timeout=2)
    finally:
        assert pool.stop(timeout=5)


def test_stop_hands_back_a_job_that_outlives_the_timeout_and_drops_its_late_result(tmp_path):
    path = tmp_path / "jobs.db"
    queue = SqliteQueue(path)
    release = threading.Event()
    started = threading.Event()

    def slow(j: Job, is_cancelled) -> JobResult:
        started.set()
        release.wait(10)
        return JobResult("late")

    stored = queue.enqueue(job(1))
    pool = WorkerPool(queue, slow, concurrency=1, poll_interval_s=0.01)
    pool.start()
    assert started.wait(5)
    assert pool.stop(timeout=0.1) is False
    handed_back = queue.get(stored.id)
    assert handed_back.state == "queued" and handed_back.restarts == 1
    other = SqliteQueue(path)
    assert other.claim(other.register_worker()).id == stored.id  # another worker takes it at once
    release.set()  # the old thread ends; its late result must not overwrite the new run's
    time.sleep(0.2)
    assert queue.get(stored.id).state == "running" and queue.get(stored.id).detail == ""
    other.close()
    queue.close()


def test_queue_from_url_opens_relative_and_absolute_sqlite_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = queue_from_url("sqlite:///relative.db")
    relative.enqueue(job())
    assert (tmp_path / "relative.db").exists()
    relative.close()
    absolute_path = tmp_path / "sub" / "abs.db"
    absolute_path.parent.mkdir()
    absolute = queue_from_url(f"sqlite:///{absolute_path}")  # sqlite:////abs/path
    assert absolute.path == str(absolute_path)
    absolute.close()
    assert absolute_path.exists()


@pytest.mark.parametrize("url", ["mysql://127.0.0.1/db", "agentcoder.db", "sqlite:///", "sqlite://x.db"])
def test_queue_from_url_rejects_other_urls_naming_the_setting(url):
    with pytest.raises(ConfigError, match="AGENTCODER_DATABASE_URL"):
        queue_from_url(url)


def test_queue_from_url_reports_an_unopenable_file_as_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="AGENTCODER_DATABASE_URL: cannot open"):
        queue_from_url(f"sqlite:///{tmp_path}/missing-dir/jobs.db")


def test_describe_error_is_one_line_short_and_masks_tokens():
    text = describe_error(ValueError("Bearer abcdefghijkl\n" + "x" * 1000), limit=60)
    assert text.startswith("ValueError: Bearer ***")
    assert len(text) <= len("ValueError: ") + 60 and "\n" not in text
    assert describe_error(KeyError()) == "KeyError"

"""The worker pool that drains the job queue.

The pool is one of the two places that catch exceptions (the other is the HTTP edge): a failing
job becomes state `failed` with a one-line detail, never a dead worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.app.queue import Job, JobQueue, JobResult
from bot.redact import describe_error

log = logging.getLogger(__name__)


Handler = Callable[[Job, Callable[[], bool]], JobResult]


class WorkerPool:
    """Threads that claim jobs, run the handler, and record how each job ended."""

    def __init__(self, queue: JobQueue, handler: Handler, concurrency: int, poll_interval_s: float = 0.2,
                 on_finished: Callable[[Job, str, JobResult], None] | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._queue = queue
        self._handler = handler
        self._concurrency = concurrency
        self._poll_interval_s = poll_interval_s
        self._on_finished = on_finished
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads; they run until stop()."""
        if self._threads:
            raise RuntimeError("the worker pool is already running")
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._work, name=f"agentcoder-worker-{n}", daemon=True)
            for n in range(self._concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Tell idle workers a job was queued, so they need not wait for the next poll."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop claiming, wait for running jobs up to `timeout`; True when all threads ended.

        A job still running after the timeout stays `running` in the queue and is taken up
        again by requeue_interrupted() at the next start.
        """
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        self._threads = []
        return stopped

    def run_until_idle(self, timeout: float = 30.0) -> int:
        """Run queued jobs, `concurrency` at a time, until none can be claimed; how many ran."""
        counts = [0] * self._concurrency

        def drain(slot: int) -> None:
            while self._run_one():
                counts[slot] += 1

        threads = [threading.Thread(target=drain, args=(n,), daemon=True) for n in range(self._concurrency)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            raise TimeoutError(f"jobs still running after {timeout} s")
        return sum(counts)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self._run_one()
            except Exception as exc:  # the queue itself failed (disk full, locked file): keep serving
                log.error("worker could not use the job queue: %s", describe_error(exc))
                ran = False
            if not ran:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(self._poll_interval_s)

    def _run_one(self) -> bool:
        job = self._queue.claim()
        if job is None:
            return False
        assert job.id is not None
        job_id = job.id
        log.info("job %s started: %s #%s (%s)", job_id, job.repo, job.issue_number, job.trigger)
        try:
            result = self._handler(job, lambda: self._queue.is_cancelled(job_id))
            state = "done"
        except Exception as exc:
            result = JobResult(describe_error(exc))
            state = "failed"
            log.error("job %s failed: %s", job_id, result.detail)
        if self._queue.is_cancelled(job_id):
            state = "cancelled"
        if result.outcome is not None:
            self._queue.record_outcome(job_id, result.outcome)
        self._queue.finish(job_id, state, result.detail, result.stop)
        log.info("job %s %s", job_id, state)
        if self._on_finished is not None:
            self._on_finished(job, state, result)
        return True

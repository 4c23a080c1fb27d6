"""The worker pool that drains the job queue.

The pool is one of the two places that catch exceptions (the other is the HTTP edge): a failing
job becomes state `failed` with a one-line detail, never a dead worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.app.queue import STALLED_AFTER_S, Job, JobQueue, JobResult
from bot.redact import describe_error

log = logging.getLogger(__name__)


Handler = Callable[[Job, Callable[[], bool]], JobResult]
# Checks a trigger before it may change anything: a refusal (already told to its sender), or None.
Admission = Callable[[Job], "str | None"]


class WorkerPool:
    """Threads that claim jobs, run the handler, and record how each job ended.

    The pool registers as one worker of the queue and sends its heartbeat every `heartbeat_s`; it also
    queues again the jobs of workers silent for `stalled_after_s` (killed, power cut), so such a job
    runs again within about `stalled_after_s + 2 * heartbeat_s`. When the database cannot be reached it
    says so once, retries with exponential backoff, and says when it is back; a finished job's result
    is kept until it can be recorded.
    """

    def __init__(self, queue: JobQueue, handler: Handler, concurrency: int, poll_interval_s: float = 0.2, *,
                 heartbeat_s: float = 5.0, stalled_after_s: float = STALLED_AFTER_S, max_backoff_s: float = 30.0,
                 on_finished: Callable[[Job, str, JobResult], None] | None = None,
                 admission: Admission | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._queue = queue
        self._handler = handler
        self._admission = admission
        self._concurrency = concurrency
        self._poll_interval_s = poll_interval_s
        self._on_finished = on_finished
        self._heartbeat_s = heartbeat_s
        self._stalled_after_s = stalled_after_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._maintainer: threading.Thread | None = None
        self.worker_id: int | None = None
        self._running: dict[int, int] = {}  # thread id → job id
        self._health = threading.Lock()
        self._outage_since: float | None = None
        self._connected_since = time.monotonic()
        self._backoff_s = 0.0

    def start(self) -> None:
        """Register with the queue and start the worker threads; they run until stop()."""
        if self._threads:
            raise RuntimeError("the worker pool is already running")
        self._stop.clear()
        self.worker_id = self._queue.register_worker()
        self._connected_since = time.monotonic()
        self._threads = [
            threading.Thread(target=self._work, name=f"agentcoder-worker-{n}", daemon=True)
            for n in range(self._concurrency)
        ]
        self._maintainer = threading.Thread(target=self._maintain, name="agentcoder-heartbeat", daemon=True)
        for thread in [*self._threads, self._maintainer]:
            thread.start()
        log.info("worker %s started: %d job(s) at a time", self.worker_id, self._concurrency)

    def wake(self) -> None:
        """Tell idle workers a job was queued, so they need not wait for the next poll."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop claiming and wait for running jobs up to `timeout`; True when all of them ended.

        A job still running after the timeout is handed back: queued again (its restart counted) for
        another worker, so a graceful shutdown never strands a job.
        """
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if self.worker_id is not None:
            for job_id in list(self._running.values()):
                try:
                    if self._queue.hand_back(job_id, self.worker_id):
                        log.warning("job %s still running at shutdown: handed back to the queue", job_id)
                except Exception as exc:  # the database is away: the job is recovered once this worker is silent
                    log.error("could not hand back job %s: %s", job_id, describe_error(exc))
        if self._maintainer is not None:
            self._maintainer.join(max(0.0, deadline - time.monotonic()) + 1.0)
            self._maintainer = None
        if self.worker_id is not None:
            try:
                self._queue.unregister_worker(self.worker_id)
            except Exception as exc:
                log.error("could not unregister worker %s: %s", self.worker_id, describe_error(exc))
            log.info("worker %s stopped", self.worker_id)
            self.worker_id = None
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

    # -- the threads -------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self._run_one()
                pause = self._poll_interval_s
            except Exception as exc:  # the queue itself failed (database away, disk full): keep serving
                ran, pause = False, self._database_failed(exc)
            if not ran:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(pause)

    def _maintain(self) -> None:
        """Heartbeat, and recovery of the jobs of dead workers, until stop()."""
        # No backoff here: one cheap query per heartbeat, so that after an outage this worker proves it is alive
        # well before the others may judge it dead (they wait `stalled_after_s` after their own reconnection).
        while not self._stop.wait(self._heartbeat_s):
            try:
                assert self.worker_id is not None
                self._queue.heartbeat(self.worker_id)
                self._database_ok()
                # After an outage, give the other workers time to send a heartbeat before judging them.
                if time.monotonic() - self._connected_since >= self._stalled_after_s:
                    for job_id in self._queue.recover_stalled(self._stalled_after_s):
                        log.warning("job %s was running on a worker that stopped answering: queued again", job_id)
            except Exception as exc:
                self._database_failed(exc)

    def _admit_one(self, worker_id: int | None) -> bool:
        """Check one new trigger's sender; only an admitted trigger supersedes the jobs of its issue."""
        job = self._queue.claim_unadmitted(worker_id)
        if job is None:
            return False
        assert job.id is not None
        try:
            refusal = self._admission(job) if self._admission else None
        except Exception as exc:
            detail = describe_error(exc)
            log.error("job %s could not be checked: %s", job.id, detail)
            self._queue.finish(job.id, "failed", f"permission check failed: {detail}")
            return True
        if refusal is not None:
            self._queue.finish(job.id, "done", f"refused: {refusal}")
            log.info("job %s refused before it changed anything", job.id)
        elif not self._queue.admit(job.id):
            log.info("job %s was superseded while it was checked", job.id)
        return True

    def _run_one(self) -> bool:
        worker_id = self.worker_id  # stop() forgets it; this job's result is still recorded as this worker's
        while self._admit_one(worker_id):  # each check is quick; a job runs only after its sender's
            pass
        job = self._queue.claim(worker_id)
        if job is None:
            return False
        self._database_ok()
        assert job.id is not None
        job_id = job.id
        self._running[threading.get_ident()] = job_id
        log.info("job %s started: %s #%s (%s)%s", job_id, job.repo, job.issue_number, job.trigger,
                 f", restart {job.restarts}" if job.restarts else "")
        try:
            try:
                result = self._handler(job, lambda: self._is_cancelled(job_id))
                state = "done"
            except Exception as exc:
                result = JobResult(describe_error(exc))
                state = "failed"
                log.error("job %s failed: %s", job_id, result.detail)
            if self._is_cancelled(job_id):
                state = "cancelled"
            if self._record(job_id, state, result, worker_id) and self._on_finished is not None:
                self._on_finished(job, state, result)
        finally:
            self._running.pop(threading.get_ident(), None)
        return True

    def _is_cancelled(self, job_id: int) -> bool:
        try:
            return self._queue.is_cancelled(job_id)
        except Exception as exc:  # a database outage is no reason to stop a job
            self._database_failed(exc)
            return False

    def _record(self, job_id: int, state: str, result: JobResult, worker_id: int | None) -> bool:
        """Record how a job ended, waiting out a database outage rather than losing the result; False when
        the job was meanwhile handed to another worker (this run's result is dropped)."""
        while True:
            try:
                if result.outcome is not None:
                    self._queue.record_outcome(job_id, result.outcome)
                recorded = self._queue.finish(job_id, state, result.detail, result.stop, worker_id=worker_id)
                break
            except KeyError:
                raise
            except Exception as exc:
                time.sleep(self._database_failed(exc))
        self._database_ok()
        if recorded:
            log.info("job %s %s", job_id, state)
        else:
            log.warning("job %s was handed to another worker while this one could not reach the database;"
                        " this run's result (%s) is dropped", job_id, state)
        return recorded

    # -- database health ---------------------------------------------------------------------------

    def _database_failed(self, exc: Exception) -> float:
        """Note a failed call; how long to wait before the next (exponential backoff, logged once an outage)."""
        with self._health:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                self._backoff_s = 0.5
                log.error("lost the job database (%s); retrying with backoff", describe_error(exc))
            else:
                self._backoff_s = min(self._backoff_s * 2, self._max_backoff_s)
                log.warning("job database still unreachable; retrying in %.1f s", self._backoff_s)
            return self._backoff_s

    def _database_ok(self) -> None:
        with self._health:
            if self._outage_since is not None:
                log.warning("reconnected to the job database after %.1f s", time.monotonic() - self._outage_since)
                self._outage_since = None
                self._connected_since = time.monotonic()

"""The distributed job queue: PostgreSQL through procrastinate, with the interface of `SqliteQueue`.

procrastinate owns the jobs (`procrastinate_jobs`: the job's inputs as `args`, its status, its `lock`,
`abort_requested`, the worker that holds it) and the workers' heartbeats (`procrastinate_workers`); its
SQL functions do the claiming (`FOR UPDATE SKIP LOCKED`, one running job per lock: ours is the issue),
the cancelling and aborting, and the retrying. AgentCoder's own tables hold what procrastinate does not
know: a job's outcome (detail, stop, restarts, times) and the webhook delivery ids seen.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any

import psycopg
from procrastinate import SyncPsycopgConnector, sql
from procrastinate import jobs as procrastinate_jobs
from procrastinate.manager import JobManager
from psycopg.types.json import Jsonb

from bot.app.pg_schema import SchemaError, migrate
from bot.app.queue import (
    DELIVERY_RETENTION_S,
    FINAL_STATES,
    PROGRESS_MESSAGE_CHARS,
    PROGRESS_MESSAGES_KEPT,
    STALLED_AFTER_S,
    Job,
    JobRecord,
    JobTotals,
    database_label,
)
from bot.config import ConfigError

QUEUE_NAME = "agentcoder"
# A webhook's job waits here, without its issue's lock, until its sender is checked (`admit` moves it on).
ADMISSION_QUEUE = "agentcoder-admission"
TASK_NAME = "agentcoder.run_job"
_STATE_OF_STATUS = {"todo": "queued", "doing": "running", "succeeded": "done", "failed": "failed",
                    "cancelled": "cancelled", "aborting": "running", "aborted": "cancelled"}
_STATUS_OF_STATE = {"done": "succeeded", "failed": "failed", "cancelled": "aborted"}
# Job fields that describe what happened to a job; every other field is an input, stored in procrastinate's args.
_OUTCOME_FIELDS = {"id", "state", "created_at", "started_at", "finished_at", "detail", "stop", "restarts", "title",
                   "iterations", "tokens", "cost_usd"}
_SELECT = ("SELECT j.id, j.status, j.queue_name, j.args, a.created_at, a.started_at, a.finished_at, a.detail, a.stop, a.restarts,"
           " a.title, a.iterations, a.tokens, a.cost_usd"
           " FROM procrastinate_jobs AS j JOIN agentcoder_jobs AS a ON a.id = j.id")
_SELECT_ONE = _SELECT + " WHERE j.id = %s"
_STATUSES_OF_STATE = {"queued": ["todo"], "running": ["doing", "aborting"], "done": ["succeeded"],
                      "failed": ["failed"], "cancelled": ["cancelled", "aborted"]}


class PgQueue:
    """The scale-out queue: any number of `serve` and `worker` processes on any machines share it."""

    def __init__(self, url: str, *, pool_size: int = 8, wait_s: float = 10.0):
        self.url = url
        # The pool replaces dead connections by itself; `timeout` bounds how long a call waits for one, so a
        # worker that lost the database hears of it within seconds and can say so. The pool's reconnection
        # backoff doubles until `reconnect_timeout`; a short one restarts it at the next call. A call that
        # began during the outage still waits out its `wait_s`, so a worker is back within about `wait_s` of
        # the database's return (4.4 s measured after a 6 s outage), however long the outage was; well
        # inside the 30 s (AGENTCODER_WORKER_STALLED_AFTER_S) after which a silent worker is taken for dead.
        self._connector = SyncPsycopgConnector(conninfo=url, min_size=1, max_size=pool_size, timeout=wait_s,
                                               reconnect_timeout=2.0, kwargs={"connect_timeout": 5})
        self._connector.open()
        self._manager = JobManager(self._connector)
        with self._transaction() as conn:
            conn.execute("DELETE FROM agentcoder_deliveries WHERE received_at < %s",
                         (time.time() - DELIVERY_RETENTION_S,))

    def close(self) -> None:
        """Close the connection pool."""
        self._connector.close()

    # -- deliveries ------------------------------------------------------------------------------

    def record_delivery(self, delivery_id: str) -> bool:
        """Record a delivery id; True when it is new, False for a redelivery of one already recorded."""
        with self._transaction() as conn:
            cursor = conn.execute("INSERT INTO agentcoder_deliveries (delivery_id, received_at) VALUES (%s, %s)"
                                  " ON CONFLICT DO NOTHING", (delivery_id, time.time()))
            return cursor.rowcount == 1

    def forget_delivery(self, delivery_id: str) -> None:
        """Drop a recorded delivery id, so a redelivery after a failed request is taken."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM agentcoder_deliveries WHERE delivery_id = %s", (delivery_id,))

    # -- jobs --------------------------------------------------------------------------------------

    def enqueue(self, job: Job, *, admitted: bool = True) -> Job:
        """Store a queued job. An admitted job supersedes any queued or running job for the same issue at once;
        one not admitted yet (a webhook's, whose sender is not checked) changes nothing until `admit`."""
        lock = issue_lock(job.repo, job.issue_number)
        now = time.time()
        with self._transaction() as conn:
            # Two triggers for one issue at the same moment: one after the other, so exactly one stays queued.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            deferred = self._manager.defer_job(
                procrastinate_jobs.Job(queue=QUEUE_NAME if admitted else ADMISSION_QUEUE, task_name=TASK_NAME,
                                       lock=lock if admitted else None, queueing_lock=None,
                                       task_kwargs=_inputs(job)),
                connection=conn,
            )
            new_id = deferred.id
            conn.execute("INSERT INTO agentcoder_jobs (id, created_at) VALUES (%s, %s)", (new_id, now))
            if admitted:
                self._supersede(conn, new_id, lock, now)
        return dataclasses.replace(job, id=new_id, state="queued", created_at=now, started_at=None,
                                   finished_at=None, detail="")

    def claim_unadmitted(self, worker_id: int | None = None) -> Job | None:
        """Take the oldest job whose sender is not checked yet (state `admitting`), to check it."""
        with self._transaction() as conn:
            job_id = self._fetch(conn, ADMISSION_QUEUE, worker_id)
            return None if job_id is None else _job(conn.execute(_SELECT_ONE, (job_id,)).fetchone())

    def admit(self, job_id: int) -> bool:
        """The job's sender may trigger it: it supersedes the older jobs of its issue and waits its turn.

        False (and the job cancelled) when a newer admitted job for the issue exists already.
        """
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute("SELECT args FROM procrastinate_jobs WHERE id = %s", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            lock = issue_lock(row[0]["repo"], row[0]["issue_number"])
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            newer = conn.execute("SELECT max(id) FROM procrastinate_jobs WHERE lock = %s AND id > %s AND status IN"
                                 " ('todo', 'doing', 'succeeded', 'failed')", (lock, job_id)).fetchone()[0]
            if newer is not None:
                self._connector.execute_query_all_with_connection(
                    conn, query=sql.queries["finish_job"], job_id=job_id, status="aborted", delete_job=False)
                conn.execute("UPDATE agentcoder_jobs SET finished_at = %s, detail = %s WHERE id = %s",
                             (now, f"superseded by job {newer}", job_id))
                return False
            # Into the issue's queue and under its lock: from now on it is an ordinary queued job.
            self._connector.execute_query_all_with_connection(
                conn, query=sql.queries["retry_job"], job_id=job_id, retry_at=datetime.datetime.now(datetime.UTC),
                new_priority=None, new_queue_name=QUEUE_NAME, new_lock=lock)
            self._supersede(conn, job_id, lock, now)
        return True

    def _supersede(self, conn: psycopg.Connection, new_id: int, lock: str, now: float) -> None:
        """Cancel the older queued jobs of an issue and ask its running one to stop."""
        reason = f"superseded by job {new_id}"
        older = conn.execute("SELECT id, status FROM procrastinate_jobs WHERE lock = %s AND id < %s"
                             " AND status IN ('todo', 'doing') FOR UPDATE", (lock, new_id)).fetchall()
        for old_id, status in older:
            # abort=True: a queued job is cancelled, a running one is asked to stop.
            self._manager.cancel_job_by_id(old_id, abort=True, connection=conn)
            if status == "todo":
                conn.execute("UPDATE agentcoder_jobs SET finished_at = %s, detail = %s, cancel_reason = %s"
                             " WHERE id = %s", (now, reason, reason, old_id))
            else:
                conn.execute("UPDATE agentcoder_jobs SET cancel_reason = %s WHERE id = %s", (reason, old_id))

    def claim(self, worker_id: int | None = None) -> Job | None:
        """Take the oldest queued job whose issue has no running job (procrastinate's fetch), or None."""
        with self._transaction() as conn:
            job_id = self._fetch(conn, QUEUE_NAME, worker_id)
            if job_id is None:
                return None
            conn.execute("UPDATE agentcoder_jobs SET started_at = %s WHERE id = %s", (time.time(), job_id))
            return _job(conn.execute(_SELECT_ONE, (job_id,)).fetchone())

    def _fetch(self, conn: psycopg.Connection, queue_name: str, worker_id: int | None) -> int | None:
        """procrastinate's fetch: the oldest job of `queue_name` it may start (issue locks honoured), now `doing`,
        by id; None when there is none."""
        row = self._connector.execute_query_one_with_connection(
            conn, query=sql.queries["fetch_job"], queues=[queue_name], worker_id=worker_id)
        return row["id"]

    def finish(self, job_id: int, state: str, detail: str = "", stop: str | None = None,
               worker_id: int | None = None) -> bool:
        """Record a job's final state; False (nothing recorded) when `worker_id` no longer holds it.

        A cancelled job's detail starts with why it was cancelled.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"not a final job state: {state!r}")
        with self._transaction() as conn:
            row = conn.execute("SELECT j.status, j.worker_id, a.cancel_reason FROM procrastinate_jobs AS j"
                               " JOIN agentcoder_jobs AS a ON a.id = j.id WHERE j.id = %s FOR UPDATE OF j",
                               (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            status, holder, cancel_reason = row
            if worker_id is not None and (status != "doing" or holder not in (worker_id, None)):
                return False  # handed to another worker while this one was presumed dead
            if status in ("todo", "doing"):
                self._connector.execute_query_all_with_connection(
                    conn, query=sql.queries["finish_job"], job_id=job_id, status=_STATUS_OF_STATE[state],
                    delete_job=False)
            if state == "cancelled" and cancel_reason:
                detail = f"{cancel_reason}: {detail}" if detail else cancel_reason
            conn.execute("UPDATE agentcoder_jobs SET finished_at = %s, detail = %s, stop = %s WHERE id = %s",
                         (time.time(), detail, stop, job_id))
        return True

    def hand_back(self, job_id: int, worker_id: int) -> bool:
        """A worker shutting down puts its running job back in the queue; False when it no longer held it."""
        with self._transaction() as conn:
            row = conn.execute("SELECT status, worker_id, abort_requested FROM procrastinate_jobs"
                               " WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
            if row is None or row[0] != "doing" or row[1] != worker_id:
                return False
            self._requeue(conn, job_id, superseded=row[2])
        return True

    def is_cancelled(self, job_id: int) -> bool:
        """True when the job was superseded or cancelled."""
        with self._transaction() as conn:
            row = conn.execute("SELECT status, abort_requested FROM procrastinate_jobs WHERE id = %s",
                               (job_id,)).fetchone()
        return row is not None and (row[1] or row[0] in ("cancelled", "aborted"))

    def recent(self, limit: int = 50, *, state: str | None = None, repo: str | None = None) -> list[Job]:
        """The newest jobs first, optionally only those in one state and/or of one repository."""
        where, params = ["j.queue_name = ANY(%s)"], [[QUEUE_NAME, ADMISSION_QUEUE]]
        if state:
            where.append("j.status::text = ANY(%s)")
            params.append(_STATUSES_OF_STATE.get(state, [state]))
            if state in ("queued", "running"):  # a job being admitted is neither
                where.append("(j.queue_name = %s OR j.status <> 'doing')")
                params.append(QUEUE_NAME)
        if repo:
            where.append("j.args->>'repo' = %s")
            params.append(repo)
        with self._transaction() as conn:
            rows = conn.execute(_SELECT + f" WHERE {' AND '.join(where)} ORDER BY j.id DESC LIMIT %s",
                                (*params, limit)).fetchall()
        return [_job(row) for row in rows]

    def record_progress(self, job_id: int, message: str) -> None:
        """Add a progress message to a running job (shortened; only the newest ones are kept)."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO agentcoder_job_progress (job_id, at, message) VALUES (%s, %s, %s)",
                         (job_id, time.time(), message[:PROGRESS_MESSAGE_CHARS]))
            conn.execute("DELETE FROM agentcoder_job_progress WHERE job_id = %s AND id NOT IN (SELECT id FROM"
                         " agentcoder_job_progress WHERE job_id = %s ORDER BY id DESC LIMIT %s)",
                         (job_id, job_id, PROGRESS_MESSAGES_KEPT))

    def record_outcome(self, job_id: int, outcome: dict) -> None:
        """Store a job's JSON iteration log and the figures the job list shows of it."""
        with self._transaction() as conn:
            conn.execute("UPDATE agentcoder_jobs SET outcome = %s, title = %s, iterations = %s, tokens = %s,"
                         " cost_usd = %s WHERE id = %s",
                         (Jsonb(outcome), str(outcome.get("issue_title") or ""), len(outcome.get("iterations") or []),
                          int(outcome.get("total_tokens") or 0), outcome.get("cost_usd"), job_id))

    def job_record(self, job_id: int) -> JobRecord | None:
        """One job with its iteration log and progress messages; None when there is no such job."""
        with self._transaction() as conn:
            row = conn.execute(_SELECT_ONE, (job_id,)).fetchone()
            if row is None:
                return None
            (outcome,) = conn.execute("SELECT outcome FROM agentcoder_jobs WHERE id = %s", (job_id,)).fetchone()
            progress = conn.execute("SELECT at, message FROM agentcoder_job_progress WHERE job_id = %s ORDER BY id",
                                    (job_id,)).fetchall()
        return JobRecord(_job(row), outcome, [(at, message) for at, message in progress])

    def totals(self, since: float) -> JobTotals:
        """Jobs created since `since` (unix time): how many, how many resolved, tokens and known cost."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE stop = 'resolved'), COALESCE(SUM(tokens), 0),"
                " COALESCE(SUM(cost_usd), 0.0), COUNT(*) FILTER (WHERE tokens IS NOT NULL AND cost_usd IS NULL)"
                " FROM agentcoder_jobs WHERE created_at >= %s", (since,)).fetchone()
        return JobTotals(int(row[0]), int(row[1]), int(row[2]), float(row[3]), int(row[4]))

    def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT queue_name, status::text, COUNT(*) FROM procrastinate_jobs"
                                " WHERE queue_name = ANY(%s) GROUP BY queue_name, status",
                                ([QUEUE_NAME, ADMISSION_QUEUE],)).fetchall()
        counts: dict[str, int] = {}
        for queue_name, status, count in rows:
            state = _state(queue_name, status)
            counts[state] = counts.get(state, 0) + count
        return counts

    def get(self, job_id: int) -> Job | None:
        """One job by id."""
        with self._transaction() as conn:
            row = conn.execute(_SELECT_ONE, (job_id,)).fetchone()
        return None if row is None else _job(row)

    # -- workers -----------------------------------------------------------------------------------

    def register_worker(self) -> int:
        """Register a worker process (procrastinate's workers table, with a first heartbeat); its id."""
        return self._connector.execute_query_one(query=sql.queries["register_worker"])["worker_id"]

    def heartbeat(self, worker_id: int) -> None:
        """Record that the worker is alive; re-register it under its id when it was pruned while away."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO procrastinate_workers (id, last_heartbeat) OVERRIDING SYSTEM VALUE"
                         " VALUES (%s, now()) ON CONFLICT (id) DO UPDATE SET last_heartbeat = now()", (worker_id,))

    def unregister_worker(self, worker_id: int) -> None:
        """Forget a worker that stopped cleanly."""
        self._connector.execute_query(query=sql.queries["unregister_worker"], worker_id=worker_id)

    def recover_stalled(self, stalled_after_s: float) -> list[int]:
        """Queue again the running jobs of workers silent for `stalled_after_s` (or unknown); their ids."""
        with self._transaction() as conn:
            (uptime,) = conn.execute("SELECT extract(epoch FROM now() - pg_postmaster_start_time())").fetchone()
        if uptime < stalled_after_s:
            return []  # the server was restarted: every worker is silent until it reconnects, none is dead yet
        stalled = [job for queue in (QUEUE_NAME, ADMISSION_QUEUE) for job in self._connector.execute_query_all(
            query=sql.queries["select_stalled_jobs_by_heartbeat"], queue=queue, task_name=None,
            seconds_since_heartbeat=stalled_after_s)]
        requeued: list[int] = []
        for candidate in stalled:
            with self._transaction() as conn:
                row = conn.execute("SELECT status, worker_id, abort_requested FROM procrastinate_jobs"
                                   " WHERE id = %s FOR UPDATE", (candidate["id"],)).fetchone()
                if row is None or row[0] != "doing" or row[1] != candidate["worker_id"]:
                    continue  # another worker recovered it first
                if not self._requeue(conn, candidate["id"], superseded=row[2]):
                    requeued.append(candidate["id"])
        with self._transaction() as conn:
            # Workers stay listed while they hold a running job, so its worker_id keeps naming them.
            conn.execute("DELETE FROM procrastinate_workers AS w WHERE last_heartbeat < now() - make_interval("
                         "secs => %s) AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE worker_id = w.id"
                         " AND status = 'doing')", (stalled_after_s,))
        return requeued

    def requeue_interrupted(self) -> int:
        """At start-up: queue again the jobs left running by a worker that is gone; how many."""
        return len(self.recover_stalled(STALLED_AFTER_S))

    # -- helpers -----------------------------------------------------------------------------------

    def _requeue(self, conn: psycopg.Connection, job_id: int, *, superseded: bool) -> bool:
        """Put a running job back in the queue, or end it when it was superseded meanwhile; True when ended."""
        if superseded:
            self._connector.execute_query_all_with_connection(
                conn, query=sql.queries["finish_job"], job_id=job_id, status="aborted", delete_job=False)
            conn.execute("UPDATE agentcoder_jobs SET finished_at = %s, detail = cancel_reason WHERE id = %s",
                         (time.time(), job_id))
            return True
        self._connector.execute_query_all_with_connection(
            conn, query=sql.queries["retry_job"], job_id=job_id, retry_at=datetime.datetime.now(datetime.UTC),
            new_priority=None, new_queue_name=None, new_lock=None)
        conn.execute("UPDATE agentcoder_jobs SET started_at = NULL, restarts = restarts + 1 WHERE id = %s",
                     (job_id,))
        return False

    def _transaction(self):
        return _PoolTransaction(self._connector.pool)


class _PoolTransaction:
    """A connection from the pool inside one transaction (committed on success, rolled back on error)."""

    def __init__(self, pool):
        self._pool = pool

    def __enter__(self) -> psycopg.Connection:
        self._connection_cm = self._pool.connection()
        conn = self._connection_cm.__enter__()
        self._transaction_cm = conn.transaction()
        self._transaction_cm.__enter__()
        return conn

    def __exit__(self, *exc_info) -> None:
        try:
            self._transaction_cm.__exit__(*exc_info)
        finally:
            self._connection_cm.__exit__(*exc_info)


def issue_lock(repo: str, issue_number: int) -> str:
    """procrastinate's lock for an issue: at most one running job holds it."""
    return f"{repo}#{issue_number}"


def _inputs(job: Job) -> dict[str, Any]:
    return {field.name: getattr(job, field.name) for field in dataclasses.fields(Job)
            if field.name not in _OUTCOME_FIELDS}


def _state(queue_name: str, status: str) -> str:
    if queue_name == ADMISSION_QUEUE and status == "doing":
        return "admitting"
    return _STATE_OF_STATUS[status]


def _job(row: tuple) -> Job:
    (job_id, status, queue_name, args, created_at, started_at, finished_at, detail, stop, restarts, title, iterations, tokens,
     cost_usd) = row
    names = {field.name for field in dataclasses.fields(Job)} - _OUTCOME_FIELDS
    return Job(**{key: value for key, value in args.items() if key in names}, id=job_id,
               state=_state(queue_name, status), created_at=created_at, started_at=started_at,
               finished_at=finished_at, detail=detail, stop=stop, restarts=restarts, title=title,
               iterations=iterations, tokens=tokens, cost_usd=cost_usd)


def open_pg_queue(url: str) -> PgQueue:
    """Connect (once, quickly, to fail with a clear message), bring the schema up to date, and open the queue."""
    migrate_pg(url)
    return PgQueue(url)


def migrate_pg(url: str) -> list[str]:
    """Bring the database's schema up to date; what was applied. A ConfigError names the setting when it cannot."""
    where = database_label(url)
    try:
        conn = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"AGENTCODER_DATABASE_URL: cannot connect to PostgreSQL at {where}: {reason}") from exc
    try:
        with conn:
            return migrate(conn)
    except SchemaError as exc:
        raise ConfigError(f"AGENTCODER_DATABASE_URL: {where}: {exc}") from exc
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"AGENTCODER_DATABASE_URL: {where}: could not bring the schema up to date: {reason}") from exc

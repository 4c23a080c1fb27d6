"""The embedded job queue: one SQLite file in WAL mode (the interface and the job's data are in `bot/app/queue.py`).

A webhook's job is stored not admitted; a worker checks its sender (`claim_unadmitted`, then `admit` or a
refusal) before it may supersede anything; only then is it claimed to run, one running job per issue.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

from bot.app.queue import (
    DELIVERY_RETENTION_S,
    FINAL_STATES,
    PROGRESS_MESSAGE_CHARS,
    PROGRESS_MESSAGES_KEPT,
    STALLED_AFTER_S,
    Job,
    JobRecord,
    JobTotals,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    installation_id INTEGER NOT NULL,
    issue_number INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    sender TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    guidance TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    detail TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    cancel_reason TEXT NOT NULL DEFAULT '',
    stop TEXT,
    comment_id INTEGER,
    comment_kind TEXT NOT NULL DEFAULT '',
    worker_id INTEGER,
    restarts INTEGER NOT NULL DEFAULT 0,
    admitted INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    last_heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS job_progress (
    job_id INTEGER NOT NULL,
    at REAL NOT NULL,
    message TEXT NOT NULL
);
"""
# Columns added after version 0.1, for the dashboard: (name, type); old files get them at open.
_ADDED_COLUMNS = (
    ("stop", "TEXT"),
    ("title", "TEXT NOT NULL DEFAULT ''"),
    ("iterations", "INTEGER"),
    ("tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("outcome", "TEXT"),
    ("comment_id", "INTEGER"),  # the comment that asked for a retry, for the 👀 reaction
    ("comment_kind", "TEXT NOT NULL DEFAULT ''"),
    ("worker_id", "INTEGER"),
    ("restarts", "INTEGER NOT NULL DEFAULT 0"),
    ("admitted", "INTEGER NOT NULL DEFAULT 1"),  # a webhook's job whose sender is not checked yet: 0
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_by_issue ON jobs (repo, issue_number, state);
CREATE INDEX IF NOT EXISTS jobs_by_repo ON jobs (repo, id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, stop, tokens, cost_usd);
CREATE INDEX IF NOT EXISTS job_progress_by_job ON job_progress (job_id, at);
"""
_JOB_COLUMNS = (
    "id, repo, installation_id, issue_number, trigger, sender, delivery_id, guidance, "
    "state, created_at, started_at, finished_at, detail, stop, title, iterations, tokens, cost_usd, comment_id, "
    "comment_kind, restarts"
)



class SqliteQueue:
    """The embedded queue: one SQLite file in WAL mode, one connection guarded by a lock."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._lock = threading.Lock()
        # Autocommit mode; every write below runs in an explicit BEGIN IMMEDIATE transaction.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed job survives a power cut, not only a crash of this process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in columns:  # a store written by an older version
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
        self._db.executescript(_INDEXES)
        with self._transaction() as db:
            db.execute("DELETE FROM deliveries WHERE received_at < ?", (time.time() - DELIVERY_RETENTION_S,))

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def record_delivery(self, delivery_id: str) -> bool:
        """Record a delivery id; True when it is new, False for a redelivery of one already recorded."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO deliveries (delivery_id, received_at) VALUES (?, ?)",
                (delivery_id, time.time()),
            )
            return cursor.rowcount == 1

    def forget_delivery(self, delivery_id: str) -> None:
        """Drop a recorded delivery id, so a redelivery after a failed request is taken."""
        with self._transaction() as db:
            db.execute("DELETE FROM deliveries WHERE delivery_id = ?", (delivery_id,))

    def enqueue(self, job: Job, *, admitted: bool = True) -> Job:
        """Store a queued job. An admitted job supersedes any queued or running job for the same issue at once;
        one not admitted yet (a webhook's, whose sender is not checked) changes nothing until `admit`."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (repo, installation_id, issue_number, trigger, sender, delivery_id,"
                " guidance, state, created_at, comment_id, comment_kind, admitted)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job.repo, job.installation_id, job.issue_number, job.trigger, job.sender,
                 job.delivery_id, job.guidance, now, job.comment_id, job.comment_kind, int(admitted)),
            )
            new_id = cursor.lastrowid
            if admitted:
                self._supersede(db, new_id, job.repo, job.issue_number, now)
        return replace(job, id=new_id, state="queued", created_at=now, started_at=None,
                       finished_at=None, detail="")

    def claim_unadmitted(self, worker_id: int | None = None) -> Job | None:
        """Take the oldest job whose sender is not checked yet (state `admitting`), to check it."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'queued' AND admitted = 0 ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'admitting', worker_id = ? WHERE id = ?", (worker_id, row["id"]))
        return replace(_job_from_row(row), state="admitting")

    def admit(self, job_id: int) -> bool:
        """The job's sender may trigger it: it supersedes the older jobs of its issue and waits its turn.

        False (and the job cancelled) when a newer admitted job for the issue exists already.
        """
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT repo, issue_number FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            newer = db.execute(
                "SELECT id FROM jobs WHERE repo = ? AND issue_number = ? AND id > ? AND admitted = 1"
                " AND state IN ('queued', 'running', 'done', 'failed') ORDER BY id DESC LIMIT 1",
                (row["repo"], row["issue_number"], job_id),
            ).fetchone()
            if newer is not None:
                db.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = ?, admitted = 1,"
                           " worker_id = NULL WHERE id = ?", (now, f"superseded by job {newer['id']}", job_id))
                return False
            db.execute("UPDATE jobs SET state = 'queued', admitted = 1, worker_id = NULL WHERE id = ?", (job_id,))
            self._supersede(db, job_id, row["repo"], row["issue_number"], now)
        return True

    @staticmethod
    def _supersede(db: sqlite3.Connection, new_id: int, repo: str, issue_number: int, now: float) -> None:
        """Cancel the older queued jobs of an issue and flag its running one."""
        reason = f"superseded by job {new_id}"
        db.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = ?"
            " WHERE repo = ? AND issue_number = ? AND state = 'queued' AND admitted = 1 AND id < ?",
            (now, reason, repo, issue_number, new_id),
        )
        db.execute(
            "UPDATE jobs SET cancel_requested = 1, cancel_reason = ?"
            " WHERE repo = ? AND issue_number = ? AND state = 'running' AND id < ?",
            (reason, repo, issue_number, new_id),
        )

    def register_worker(self) -> int:
        """Register a worker process (with a first heartbeat); its id."""
        with self._transaction() as db:
            return db.execute("INSERT INTO workers (last_heartbeat) VALUES (?)", (time.time(),)).lastrowid

    def heartbeat(self, worker_id: int) -> None:
        """Record that the worker is alive; re-register it when it was pruned while it was away."""
        with self._transaction() as db:
            db.execute("INSERT INTO workers (id, last_heartbeat) VALUES (?, ?)"
                       " ON CONFLICT (id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat",
                       (worker_id, time.time()))

    def unregister_worker(self, worker_id: int) -> None:
        """Forget a worker that stopped cleanly."""
        with self._transaction() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def claim(self, worker_id: int | None = None) -> Job | None:
        """Move the oldest queued job whose issue has no running job to running, and return it."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs AS q WHERE q.state = 'queued' AND q.admitted = 1 AND NOT EXISTS ("
                " SELECT 1 FROM jobs AS r WHERE r.state = 'running'"
                " AND r.repo = q.repo AND r.issue_number = q.issue_number)"
                " ORDER BY q.id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state = 'running', started_at = ?, worker_id = ? WHERE id = ?",
                       (now, worker_id, row["id"]))
        return replace(_job_from_row(row), state="running", started_at=now)

    def finish(self, job_id: int, state: str, detail: str = "", stop: str | None = None,
               worker_id: int | None = None) -> bool:
        """Record a job's final state; False (nothing recorded) when `worker_id` no longer holds it.

        A cancelled job's detail starts with why it was cancelled.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"not a final job state: {state!r}")
        with self._transaction() as db:
            row = db.execute("SELECT cancel_reason, state, worker_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            if worker_id is not None and (row["state"] != "running" or row["worker_id"] not in (worker_id, None)):
                return False  # handed to another worker while this one was presumed dead
            if state == "cancelled" and row["cancel_reason"]:
                detail = f"{row['cancel_reason']}: {detail}" if detail else row["cancel_reason"]
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, detail = ?, stop = ? WHERE id = ?",
                (state, time.time(), detail, stop, job_id),
            )
        return True

    def hand_back(self, job_id: int, worker_id: int) -> bool:
        """A worker shutting down puts its running job back in the queue; False when it no longer held it."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'queued', started_at = NULL, worker_id = NULL, restarts = restarts + 1"
                " WHERE id = ? AND state = 'running' AND worker_id = ? AND cancel_requested = 0",
                (job_id, worker_id),
            )
            if cursor.rowcount == 0:
                cursor = db.execute(
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = cancel_reason"
                    " WHERE id = ? AND state = 'running' AND worker_id = ?", (time.time(), job_id, worker_id))
            return cursor.rowcount == 1

    def is_cancelled(self, job_id: int) -> bool:
        """True when the job was superseded or cancelled."""
        with self._lock:
            row = self._db.execute("SELECT state, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None and (row["state"] == "cancelled" or bool(row["cancel_requested"]))

    def recover_stalled(self, stalled_after_s: float) -> list[int]:
        """Queue again the running jobs of workers silent for `stalled_after_s` (or unknown); their ids."""
        now = time.time()
        stalled = ("state = 'running' AND (worker_id IS NULL OR worker_id NOT IN"
                   " (SELECT id FROM workers WHERE last_heartbeat >= ?))")
        with self._transaction() as db:
            # A superseded job that was interrupted is not worth resuming: its successor is queued.
            db.execute(f"UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = cancel_reason"
                       f" WHERE cancel_requested = 1 AND {stalled}", (now, now - stalled_after_s))
            ids = [row["id"] for row in db.execute(f"SELECT id FROM jobs WHERE {stalled} ORDER BY id",
                                                   (now - stalled_after_s,))]
            db.executemany("UPDATE jobs SET state = 'queued', started_at = NULL, worker_id = NULL,"
                           " restarts = restarts + 1 WHERE id = ?", [(job_id,) for job_id in ids])
            # A sender's check cut short is simply done again.
            db.execute("UPDATE jobs SET state = 'queued', worker_id = NULL WHERE state = 'admitting' AND (worker_id"
                       " IS NULL OR worker_id NOT IN (SELECT id FROM workers WHERE last_heartbeat >= ?))",
                       (now - stalled_after_s,))
            db.execute("DELETE FROM workers WHERE last_heartbeat < ?", (now - stalled_after_s,))
        return ids

    def requeue_interrupted(self) -> int:
        """At start-up: queue again the jobs left running by a worker that is gone; how many."""
        return len(self.recover_stalled(STALLED_AFTER_S))

    def recent(self, limit: int = 50, *, state: str | None = None, repo: str | None = None) -> list[Job]:
        """The newest jobs first, optionally only those in one state and/or of one repository."""
        where, params = [], []
        if state:
            where.append("state = ?")
            params.append(state)
        if repo:
            where.append("repo = ?")
            params.append(repo)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs{clause} ORDER BY id DESC LIMIT ?",
                                    (*params, limit)).fetchall()
        return [_job_from_row(row) for row in rows]

    def record_progress(self, job_id: int, message: str) -> None:
        """Add a progress message to a running job (shortened; only the newest ones are kept)."""
        with self._transaction() as db:
            db.execute("INSERT INTO job_progress (job_id, at, message) VALUES (?, ?, ?)",
                       (job_id, time.time(), message[:PROGRESS_MESSAGE_CHARS]))
            db.execute(
                "DELETE FROM job_progress WHERE job_id = ? AND rowid NOT IN ("
                " SELECT rowid FROM job_progress WHERE job_id = ? ORDER BY at DESC, rowid DESC LIMIT ?)",
                (job_id, job_id, PROGRESS_MESSAGES_KEPT),
            )

    def record_outcome(self, job_id: int, outcome: dict) -> None:
        """Store a job's JSON iteration log and the figures the job list shows of it."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET outcome = ?, title = ?, iterations = ?, tokens = ?, cost_usd = ? WHERE id = ?",
                (json.dumps(outcome), str(outcome.get("issue_title") or ""), len(outcome.get("iterations") or []),
                 int(outcome.get("total_tokens") or 0), outcome.get("cost_usd"), job_id),
            )

    def job_record(self, job_id: int) -> JobRecord | None:
        """One job with its iteration log and progress messages; None when there is no such job."""
        with self._lock:
            row = self._db.execute(f"SELECT {_JOB_COLUMNS}, outcome FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            progress = self._db.execute(
                "SELECT at, message FROM job_progress WHERE job_id = ? ORDER BY at, rowid", (job_id,)).fetchall()
        outcome = json.loads(row["outcome"]) if row["outcome"] else None
        job = Job(**{key: row[key] for key in row.keys() if key != "outcome"})
        return JobRecord(job, outcome, [(at, message) for at, message in progress])

    def totals(self, since: float) -> JobTotals:
        """Jobs created since `since` (unix time): how many, how many resolved, tokens and known cost."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(stop = 'resolved'), 0), COALESCE(SUM(tokens), 0),"
                " COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(tokens IS NOT NULL AND cost_usd IS NULL), 0)"
                " FROM jobs WHERE created_at >= ?", (since,)).fetchone()
        return JobTotals(*row)

    def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: count for state, count in rows}

    def get(self, job_id: int) -> Job | None:
        """One job by id."""
        with self._lock:
            row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job_from_row(row)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._lock, self._db)


class _Transaction:
    """Hold the connection lock and run one BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""

    def __init__(self, lock: threading.Lock, db: sqlite3.Connection):
        self._lock, self._db = lock, db

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                    return
                except sqlite3.Error:
                    self._rollback()
                    raise
            self._rollback()
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _job_from_row(row: sqlite3.Row) -> Job:
    return Job(**{key: row[key] for key in row.keys()})

"""The durable job queue (the worker pool that drains it is in `bot/app/workers.py`).

The embedded queue is one SQLite file. A job moves queued → running → done | failed |
cancelled; a job left running by a process that died goes back to queued at the next
start, so a delivery that was answered 2xx is never lost. One job per issue at a time: a
new trigger for the same issue cancels the queued one and flags the running one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from bot.config import ConfigError

FINAL_STATES = ("done", "failed", "cancelled")
# GitHub may redeliver days later (manual redelivery); older delivery ids are forgotten.
DELIVERY_RETENTION_S = 30 * 24 * 3600

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
    stop TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_by_issue ON jobs (repo, issue_number, state);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL
);
"""
_JOB_COLUMNS = (
    "id, repo, installation_id, issue_number, trigger, sender, delivery_id, guidance, "
    "state, created_at, started_at, finished_at, detail, stop"
)


@dataclass(frozen=True)
class Job:
    """One unit of work: run the loop for an issue (label) or on the bot's PR (retry)."""

    repo: str  # "owner/name"
    installation_id: int
    issue_number: int  # the issue (label trigger) or the PR (retry trigger)
    trigger: str  # "label" | "retry"
    sender: str
    delivery_id: str
    guidance: str = ""  # text after "/agentcoder retry"
    id: int | None = None
    state: str = "queued"
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    detail: str = ""
    stop: str | None = None  # how the loop stopped (a `Stop` value), when it ran


@dataclass(frozen=True)
class JobResult:
    """How a job ended, as the handler reports it: a one-line detail and, when the loop ran, its stop."""

    detail: str
    stop: str | None = None


class JobQueue(Protocol):
    """What the webhook edge and the worker pool need from a queue."""

    def record_delivery(self, delivery_id: str) -> bool: ...
    def forget_delivery(self, delivery_id: str) -> None: ...
    def enqueue(self, job: Job) -> Job: ...
    def claim(self) -> Job | None: ...
    def finish(self, job_id: int, state: str, detail: str = "", stop: str | None = None) -> None: ...
    def is_cancelled(self, job_id: int) -> bool: ...
    def requeue_interrupted(self) -> int: ...
    def recent(self, limit: int = 50) -> list[Job]: ...


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
        if "stop" not in columns:  # a store written by version 0.1
            self._db.execute("ALTER TABLE jobs ADD COLUMN stop TEXT")
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

    def enqueue(self, job: Job) -> Job:
        """Store a queued job, superseding any queued or running job for the same issue."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (repo, installation_id, issue_number, trigger, sender, delivery_id,"
                " guidance, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (job.repo, job.installation_id, job.issue_number, job.trigger, job.sender,
                 job.delivery_id, job.guidance, now),
            )
            new_id = cursor.lastrowid
            reason = f"superseded by job {new_id}"
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = ?"
                " WHERE repo = ? AND issue_number = ? AND state = 'queued' AND id <> ?",
                (now, reason, job.repo, job.issue_number, new_id),
            )
            db.execute(
                "UPDATE jobs SET cancel_requested = 1, cancel_reason = ?"
                " WHERE repo = ? AND issue_number = ? AND state = 'running'",
                (reason, job.repo, job.issue_number),
            )
        return replace(job, id=new_id, state="queued", created_at=now, started_at=None,
                       finished_at=None, detail="")

    def claim(self) -> Job | None:
        """Move the oldest queued job whose issue has no running job to running, and return it."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs AS q WHERE q.state = 'queued' AND NOT EXISTS ("
                " SELECT 1 FROM jobs AS r WHERE r.state = 'running'"
                " AND r.repo = q.repo AND r.issue_number = q.issue_number)"
                " ORDER BY q.id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?", (now, row["id"]))
        return replace(_job_from_row(row), state="running", started_at=now)

    def finish(self, job_id: int, state: str, detail: str = "", stop: str | None = None) -> None:
        """Record a job's final state; a cancelled job's detail starts with why it was cancelled."""
        if state not in FINAL_STATES:
            raise ValueError(f"not a final job state: {state!r}")
        with self._transaction() as db:
            row = db.execute("SELECT cancel_reason FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            if state == "cancelled" and row["cancel_reason"]:
                detail = f"{row['cancel_reason']}: {detail}" if detail else row["cancel_reason"]
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, detail = ?, stop = ? WHERE id = ?",
                (state, time.time(), detail, stop, job_id),
            )

    def is_cancelled(self, job_id: int) -> bool:
        """True when the job was superseded or cancelled."""
        with self._lock:
            row = self._db.execute("SELECT state, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None and (row["state"] == "cancelled" or bool(row["cancel_requested"]))

    def requeue_interrupted(self) -> int:
        """At start-up: put jobs left running by a dead process back in the queue; how many."""
        now = time.time()
        with self._transaction() as db:
            # A superseded job that was interrupted is not worth resuming: its successor is queued.
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, detail = cancel_reason"
                " WHERE state = 'running' AND cancel_requested = 1",
                (now,),
            )
            cursor = db.execute("UPDATE jobs SET state = 'queued', started_at = NULL WHERE state = 'running'")
            return cursor.rowcount

    def recent(self, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_job_from_row(row) for row in rows]

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


def queue_from_url(database_url: str) -> SqliteQueue:
    """Open the queue named by AGENTCODER_DATABASE_URL (sqlite:///relative.db or sqlite:////abs.db)."""
    if database_url.startswith(("postgresql://", "postgres://", "postgresql+")):
        raise ConfigError(
            "AGENTCODER_DATABASE_URL: a postgresql:// URL needs the distributed engine, which comes with the"
            " `postgres` extra (pip install 'agentcoder[postgres]') and is not wired up yet;"
            " use sqlite:///agentcoder.db for the embedded queue"
        )
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or database_url == prefix:
        raise ConfigError(
            "AGENTCODER_DATABASE_URL: expected sqlite:///relative.db or sqlite:////absolute/path.db"
        )
    path = database_url[len(prefix):]
    try:
        return SqliteQueue(path)
    except sqlite3.Error as exc:
        raise ConfigError(f"AGENTCODER_DATABASE_URL: cannot open the SQLite file {path}: {exc}") from exc

"""The PostgreSQL queue's schema: procrastinate's tables and functions plus AgentCoder's own.

`migrate` is idempotent and safe to run from several processes at once (an advisory lock serialises
them): `agentcoder migrate` runs it, and so does every `serve` and `worker` at start-up. What it
installed is recorded in `agentcoder_meta`, so an older schema is brought up to date and a schema it
cannot vouch for (written by a newer AgentCoder, or procrastinate tables it did not create) is refused
with a message instead of being guessed at.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from procrastinate.schema import SchemaManager

# The AgentCoder tables' version; each step brings a database from the previous version to this one.
SCHEMA_VERSION = 1
_STEPS = {
    1: """
CREATE TABLE agentcoder_jobs (
    id BIGINT PRIMARY KEY REFERENCES procrastinate_jobs (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    detail TEXT NOT NULL DEFAULT '',
    stop TEXT,
    cancel_reason TEXT NOT NULL DEFAULT '',
    restarts INTEGER NOT NULL DEFAULT 0,
    title TEXT NOT NULL DEFAULT '',
    iterations INTEGER,
    tokens INTEGER,
    cost_usd DOUBLE PRECISION,
    outcome JSONB
);
CREATE INDEX agentcoder_jobs_by_created ON agentcoder_jobs (created_at);
CREATE INDEX agentcoder_jobs_by_repo ON procrastinate_jobs ((args->>'repo'), id);
CREATE TABLE agentcoder_job_progress (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES agentcoder_jobs (id) ON DELETE CASCADE,
    at DOUBLE PRECISION NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX agentcoder_job_progress_by_job ON agentcoder_job_progress (job_id, id);
CREATE TABLE agentcoder_deliveries (
    delivery_id TEXT PRIMARY KEY,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX agentcoder_deliveries_by_age ON agentcoder_deliveries (received_at);
""",
}
# Any constant will do, as long as nothing else in the database takes the same advisory lock.
_MIGRATION_LOCK = 0x4147_4E54


class SchemaError(Exception):
    """The database's schema is one this version will not use; the message says what to do."""


def procrastinate_migrations() -> list[Path]:
    """procrastinate's migration scripts, oldest first (their names sort by version)."""
    return sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"))


def migrate(conn: psycopg.Connection) -> list[str]:
    """Bring the database's schema up to date, in one transaction; what was applied (empty: nothing to do)."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS agentcoder_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(conn.execute("SELECT key, value FROM agentcoder_meta").fetchall())
        ours = int(meta.get("agentcoder_schema", "0"))
        if ours > SCHEMA_VERSION:
            raise SchemaError(f"the database was migrated by a newer AgentCoder (schema {ours}; this version knows"
                              f" up to {SCHEMA_VERSION}): upgrade agentcoder on this machine")
        applied += _procrastinate_schema(conn, meta.get("procrastinate_schema"))
        for version in range(ours + 1, SCHEMA_VERSION + 1):
            conn.execute(_STEPS[version])
            applied.append(f"agentcoder schema {version}")
        _record(conn, "agentcoder_schema", str(SCHEMA_VERSION))
    return applied


def _procrastinate_schema(conn: psycopg.Connection, recorded: str | None) -> list[str]:
    migrations = procrastinate_migrations()
    latest = migrations[-1].stem
    (exists,) = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
    if not exists:
        conn.execute(SchemaManager.get_schema())  # no parameters: the % signs in it are sent as they are
        _record(conn, "procrastinate_schema", latest)
        return [f"procrastinate schema {latest}"]
    if recorded is None:
        raise SchemaError("the database already holds procrastinate tables that `agentcoder migrate` did not"
                          " create; give AgentCoder a database of its own")
    if recorded > latest:
        raise SchemaError(f"the database's procrastinate schema ({recorded}) is newer than this installation's"
                          f" procrastinate ({latest}): upgrade agentcoder on this machine")
    pending = [path for path in migrations if path.stem > recorded]
    for path in pending:
        conn.execute(path.read_text(encoding="utf-8"))
    if pending:
        _record(conn, "procrastinate_schema", latest)
    return [f"procrastinate migration {path.stem}" for path in pending]


def _record(conn: psycopg.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO agentcoder_meta (key, value) VALUES (%s, %s)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

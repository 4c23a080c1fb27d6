"""Which queue engine AGENTCODER_DATABASE_URL names: the embedded SQLite file or PostgreSQL (procrastinate).

Kept apart from both engines so that neither imports the other.
"""

from __future__ import annotations

import sqlite3

from bot.app.pg_queue import migrate_pg, open_pg_queue
from bot.app.queue import JobQueue
from bot.app.sqlite_queue import SqliteQueue
from bot.config import ConfigError


def queue_from_url(database_url: str) -> JobQueue:
    """Open the queue named by AGENTCODER_DATABASE_URL: sqlite:///file.db (embedded) or postgresql://… (scale-out).

    A postgresql:// database gets its schema brought up to date first (see `agentcoder migrate`).
    """
    if database_url.startswith(("postgresql://", "postgres://")):
        return open_pg_queue(database_url)
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or database_url == prefix:
        raise ConfigError(
            "AGENTCODER_DATABASE_URL: expected sqlite:///relative.db, sqlite:////absolute/path.db"
            " or postgresql://user:password@host:5432/database"
        )
    path = database_url[len(prefix):]
    try:
        return SqliteQueue(path)
    except sqlite3.Error as exc:
        raise ConfigError(f"AGENTCODER_DATABASE_URL: cannot open the SQLite file {path}: {exc}") from exc


def migrate_database(database_url: str) -> list[str]:
    """Create or update the schema of the store AGENTCODER_DATABASE_URL names; what was applied."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return migrate_pg(database_url)
    queue = queue_from_url(database_url)  # the embedded store updates its schema when opened
    queue.close()
    return []

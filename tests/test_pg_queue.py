"""The PostgreSQL engine's own bad inputs: schema versions, an unreachable URL, the database going away."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.app.engines import queue_from_url
from bot.app.pg_queue import PgQueue, migrate_pg
from bot.app.pg_schema import migrate
from bot.app.queue import Job, JobResult
from bot.app.workers import WorkerPool
from bot.cli import main
from bot.config import ConfigError

pytestmark = pytest.mark.postgres


def job(issue: int = 1) -> Job:
    return Job(repo="octo/widgets", installation_id=99, issue_number=issue, trigger="label", sender="maint",
               delivery_id="d")


def cli(command: str, env: dict) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AGENTCODER_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "bot.cli", command], env={**clean, "PYTHONPATH": os.getcwd(), **env},
                          capture_output=True, text=True, timeout=120)


def cli_here(command: str, env: dict, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """`cli()` in this process, for a command that cannot block (`migrate`); each contract keeps a real process."""
    for key in list(os.environ):
        if key.startswith(("AGENTCODER_", "OPENAI_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    status = main([command])
    printed = capsys.readouterr()
    return subprocess.CompletedProcess(["agentcoder", command], status, printed.out, printed.err)


def test_migrate_applies_the_schema_once_and_then_has_nothing_to_do(postgres, monkeypatch, capsys):
    url = postgres.new_database()
    first = cli("migrate", {"AGENTCODER_DATABASE_URL": url})
    again = cli_here("migrate", {"AGENTCODER_DATABASE_URL": url}, monkeypatch, capsys)
    assert first.returncode == 0 and "applied procrastinate schema" in first.stdout and "agentcoder schema 1" in first.stdout
    assert again.returncode == 0 and again.stdout.strip().endswith("schema already up to date")


def test_concurrent_migrations_from_several_processes_all_succeed(postgres):
    url = postgres.new_database()
    results: list[object] = []

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            results.append(migrate(conn))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]  # one applied both steps; the others found them


def test_a_schema_from_a_newer_agentcoder_is_refused_with_a_message(postgres, monkeypatch, capsys):
    url = postgres.new_database()
    queue_from_url(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE agentcoder_meta SET value = '99' WHERE key = 'agentcoder_schema'")
    result = cli_here("migrate", {"AGENTCODER_DATABASE_URL": url}, monkeypatch, capsys)
    assert result.returncode == 2
    assert result.stderr.startswith("agentcoder: AGENTCODER_DATABASE_URL:") and len(result.stderr.splitlines()) == 1
    assert "newer AgentCoder (schema 99" in result.stderr


def test_an_older_schema_is_brought_up_to_date(postgres):
    url = postgres.new_database()
    queue_from_url(url).close()
    with psycopg.connect(url, autocommit=True) as conn:  # as left by a version that had only procrastinate's tables
        conn.execute("DROP TABLE agentcoder_job_progress, agentcoder_jobs, agentcoder_deliveries")
        conn.execute("DROP INDEX agentcoder_jobs_by_repo")
        conn.execute("UPDATE agentcoder_meta SET value = '0' WHERE key = 'agentcoder_schema'")
    queue = queue_from_url(url)
    try:
        stored = queue.enqueue(job())
        assert queue.get(stored.id).state == "queued"
    finally:
        queue.close()


def test_procrastinate_tables_it_did_not_create_are_refused(postgres):
    url = postgres.new_database()
    queue_from_url(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE agentcoder_meta")
    with pytest.raises(ConfigError, match="procrastinate tables that `agentcoder migrate` did not create"):
        queue_from_url(url)


def _pem_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_postgresql_url_at_start_up_exits_2_naming_the_setting(command, postgres):
    url = f"postgresql://bot:hunter2secret@127.0.0.1:{postgres.port + 1}/agentcoder"
    started = time.monotonic()
    result = cli(command, {"AGENTCODER_GITHUB_APP_ID": "7", "AGENTCODER_WEBHOOK_SECRET": "s",
                           "AGENTCODER_GITHUB_PRIVATE_KEY": _pem_key(), "AGENTCODER_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("agentcoder: AGENTCODER_DATABASE_URL: cannot connect to PostgreSQL at postgresql://bot:***@")
    assert "hunter2secret" not in result.stderr + result.stdout
    assert time.monotonic() - started < 60


class _Judging:
    """The queue, noting when its worker judged which workers are dead (a worker's `recover_stalled` calls)."""

    def __init__(self, inner):
        self._inner = inner
        self.judged: list[tuple[float, list[int]]] = []  # (when the call began, the jobs it queued again)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def recover_stalled(self, stalled_after_s: float) -> list[int]:
        began = time.monotonic()
        requeued = self._inner.recover_stalled(stalled_after_s)
        self.judged.append((began, requeued))
        return requeued


@pytest.fixture
def own_postgres():
    """A cluster of this test's own, as the test stops and starts its server (the session's may be shared)."""
    from bot.dev.postgres import PostgresUnavailable, ThrowawayPostgres

    try:
        cluster = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"this test needs Debian's postgresql package (scripts/setup installs it): {exc}")
    yield cluster
    cluster.remove()


def test_the_database_going_away_mid_job_loses_nothing_and_runs_nothing_twice(own_postgres, caplog):
    url = own_postgres.new_database()
    migrate_pg(url)
    # The windows below are scaled together: a pool call gives up after `wait_s`, so each worker notices the
    # outage and, once the server is back, reconnects within about a second (psycopg_pool retries after ~1 s);
    # that is well inside `stalled_after_s`, the silence after which a worker counts as dead.
    stalled_after_s = 2.5
    queue, other = PgQueue(url, wait_s=1.0), _Judging(PgQueue(url, wait_s=1.0))
    release, entered = threading.Event(), threading.Event()
    runs: list[int] = []

    def handler(j: Job, is_cancelled) -> JobResult:
        runs.append(j.id)
        entered.set()
        release.wait(60)
        return JobResult("finished after the outage", "resolved")

    stored = queue.enqueue(job())
    timing = {"poll_interval_s": 0.05, "heartbeat_s": 0.2, "stalled_after_s": stalled_after_s, "max_backoff_s": 0.5}
    running, idle = WorkerPool(queue, handler, 1, **timing), WorkerPool(other, handler, 1, **timing)
    caplog.set_level(logging.INFO, logger="bot.app.workers")
    running.start()
    try:
        assert entered.wait(10)
        idle.start()
        own_postgres.stop("fast")
        # Longer than stalled_after_s: when the server is back, the running worker's last heartbeat is older than
        # that, and the idle worker must still not take its job.
        time.sleep(stalled_after_s + 0.5)
        own_postgres.start()
        back = time.monotonic()
        # Wait until the idle worker has judged who is dead at a moment the server had been up for stalled_after_s
        # (before that it refuses to judge), so that it had every chance to take the job.
        deadline = back + stalled_after_s + 30
        while not any(began >= back + stalled_after_s for began, _ in other.judged):
            assert time.monotonic() < deadline, "the idle worker never checked for dead workers after the outage"
            time.sleep(0.05)
        assert runs == [stored.id] and all(requeued == [] for _, requeued in other.judged)
        assert (queue.get(stored.id).state, queue.get(stored.id).restarts) == ("running", 0)
        release.set()
        deadline = time.monotonic() + 30
        while queue.get(stored.id).state != "done":
            assert time.monotonic() < deadline, "the job was not recorded after the database came back"
            time.sleep(0.05)
    finally:
        release.set()
        running.stop(timeout=10)
        idle.stop(timeout=10)
        queue.close()
        other.close()
    assert runs == [stored.id]
    reopened = queue_from_url(url)
    try:
        assert reopened.get(stored.id).detail == "finished after the outage"
    finally:
        reopened.close()
    assert "lost the job database" in caplog.text and "reconnected to the job database after" in caplog.text


def test_a_worker_with_no_jobs_to_run_is_refused():
    result = cli("worker", {"AGENTCODER_CONCURRENT_JOBS": "0"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("agentcoder: AGENTCODER_CONCURRENT_JOBS: `agentcoder worker` needs at least 1"
                                     " job at a time")

"""The PostgreSQL engine's own bad inputs: schema versions, an unreachable URL, the database going away."""

from __future__ import annotations

import logging
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
from bot.config import ConfigError
from tests.cli_runs import Run, clean_environment, run_process

pytestmark = pytest.mark.postgres


def job(issue: int = 1) -> Job:
    return Job(repo="octo/widgets", installation_id=99, issue_number=issue, trigger="label", sender="maint",
               delivery_id="d")


def real_process(command: str, env: dict[str, str]) -> Run:
    """`agentcoder COMMAND` as a real process, with no AGENTCODER_* or OPENAI_* setting but `env`."""
    return run_process(command, env={**clean_environment(), **env})[0]


def test_migrate_applies_the_schema_once_and_then_has_nothing_to_do(postgres, cli):
    url = postgres.new_database()
    first = real_process("migrate", {"AGENTCODER_DATABASE_URL": url})  # migrate's one real process
    again = cli("migrate", env={"AGENTCODER_DATABASE_URL": url})
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


def test_a_schema_from_a_newer_agentcoder_is_refused_with_a_message(postgres, cli):
    url = postgres.new_database()
    queue_from_url(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE agentcoder_meta SET value = '99' WHERE key = 'agentcoder_schema'")
    result = cli("migrate", env={"AGENTCODER_DATABASE_URL": url})
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


# serve's real process is in test_cli_serve.py; this is worker's (the refusal comes after the App's modules load).
@pytest.mark.parametrize("command, in_process", [("serve", True), ("worker", False)], ids=["serve", "worker"])
def test_an_unreachable_postgresql_url_at_start_up_exits_2_naming_the_setting(command, in_process, postgres, cli,
                                                                              caplog):
    url = f"postgresql://bot:hunter2secret@127.0.0.1:{postgres.port + 1}/agentcoder"
    env = {"AGENTCODER_GITHUB_APP_ID": "7", "AGENTCODER_WEBHOOK_SECRET": "s",
           "AGENTCODER_GITHUB_PRIVATE_KEY": _pem_key(), "AGENTCODER_DATABASE_URL": url}
    started = time.monotonic()
    result = cli(command, env=env) if in_process else real_process(command, env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("agentcoder: AGENTCODER_DATABASE_URL: cannot connect to PostgreSQL at postgresql://bot:***@")
    assert "hunter2secret" not in result.stderr + result.stdout + caplog.text  # in process, logging goes to caplog
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
        restarting = time.monotonic()
        own_postgres.start()
        back = time.monotonic()
        # Just back, every worker has been silent for longer than stalled_after_s: the engine judges none dead until
        # the server has been up that long (a worker that reconnects at once must not take the running job).
        first_back = PgQueue(url, wait_s=1.0)
        try:
            assert first_back.recover_stalled(stalled_after_s) == []
        finally:
            first_back.close()
        # Wait until the idle worker has judged who is dead at a moment the server had been up for stalled_after_s
        # (before that it refuses to judge), so that it had every chance to take the job.
        deadline = back + stalled_after_s + 30
        while not any(began >= back + stalled_after_s for began, _ in other.judged):
            assert time.monotonic() < deadline, "the idle worker never checked for dead workers after the outage"
            time.sleep(0.05)
        assert runs == [stored.id] and all(requeued == [] for _, requeued in other.judged)
        # And the idle worker judged only once it had been back for stalled_after_s itself, so that the running one
        # had time to send a heartbeat first.
        assert min(began for began, _ in other.judged) >= restarting + stalled_after_s
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


def test_a_worker_with_no_jobs_to_run_is_refused(cli):
    result = cli("worker", env={"AGENTCODER_CONCURRENT_JOBS": "0"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("agentcoder: AGENTCODER_CONCURRENT_JOBS: `agentcoder worker` needs at least 1"
                                     " job at a time")

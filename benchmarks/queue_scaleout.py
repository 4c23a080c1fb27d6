"""Scale-out: jobs per minute and queue latency with 1, 2 and 4 worker processes, PostgreSQL against SQLite
at the same total concurrency; then the webhook ack p50/p99 under a burst of deliveries on each engine.

Usage: python benchmarks/queue_scaleout.py [--jobs 12] [--concurrency 4] [--processes 1,2,4] [--burst 200]

Part 1 runs the real App as an operator would: `agentcoder serve` with AGENTCODER_CONCURRENT_JOBS=0 and P
`agentcoder worker` processes with concurrency/P jobs each, against the GitHub stand-in (a trivial repository,
one issue per job) and the zero-latency scripted model; every job is the whole real job (clone, baseline,
designed tests, one programmer turn, the suite in the Docker sandbox, push, draft PR). The issues are
labelled at once; jobs/minute is the jobs over the time from the first delivery to the last job's end;
queue latency is each job's start minus the moment its delivery was accepted (its `created_at`). SQLite's
worker processes share its file on this machine; PostgreSQL is a throw-away cluster with fsync on.
Part 2 isolates the queue: the same process counts, each a WorkerPool whose job only sleeps `--work-ms`,
drain `--queue-jobs` jobs queued at once (claim, heartbeat, finish: what the queue itself costs).
Part 3 sends a burst of signed `issues.labeled` deliveries from 50 clients at once to the webhook edge
(in-process uvicorn) over each engine and prints the ack latency. Not a test: pytest does not collect this.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bot.app.engines import queue_from_url
from bot.app.queue import FINAL_STATES
from bot.config import load_settings
from bot.dev.github.standin import GitHubStandin
from bot.dev.openai_server import ScriptedOpenAI
from bot.dev.postgres import ThrowawayPostgres
from bot.dev.serving import ThreadedServer
from webhooks.app import create_app
from webhooks.signature import sign

sys.path.insert(0, str(Path(__file__).parent))
from job_overhead import FIX, REPO, TESTS  # noqa: E402  the same trivial repository and scripted answers

APP_ID, OWNER, NAME, SECRET = 5151, "bench-org", "textutil", "scaleout-bench-secret"
PROGRAMMER, DESIGNER = "scaleout-coder", "scaleout-tester"
ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def run_app(database_url: str, processes: int, per_process: int, jobs: int, scratch: Path) -> dict:
    """One configuration: serve (no jobs) + `processes` workers; label `jobs` issues; the figures."""
    standin = GitHubStandin(scratch / "github", app_id=APP_ID, webhook_secret=SECRET).start()
    models = ScriptedOpenAI().start()
    source = scratch / "source"
    for relative, text in REPO.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(textwrap.dedent(text).lstrip())
    standin.create_repo(OWNER, NAME, source, 1)
    standin.set_permission(OWNER, NAME, "maint", "write")
    models.add(DESIGNER, *[TESTS] * jobs)
    models.add(PROGRAMMER, *[FIX] * jobs)
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AGENTCODER_", "OPENAI_"))}
    env = {**clean, "PYTHONPATH": str(ROOT), "AGENTCODER_DATABASE_URL": database_url,
           "AGENTCODER_GITHUB_APP_ID": str(APP_ID), "AGENTCODER_GITHUB_PRIVATE_KEY": standin.app_private_key_pem,
           "AGENTCODER_WEBHOOK_SECRET": SECRET, "AGENTCODER_GITHUB_API_URL": standin.api_url,
           "OPENAI_BASE_URL": models.base_url, "OPENAI_API_KEY": "bench", "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER,
           "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER}
    port = free_port()
    logs = [open(scratch / f"process-{n}.log", "w") for n in range(processes + 1)]
    started = [subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port)], stdout=logs[0],
                                stderr=subprocess.STDOUT, env={**env, "AGENTCODER_CONCURRENT_JOBS": "0"})]
    queue = None
    try:
        started += [subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], stdout=log, stderr=subprocess.STDOUT,
                                     env={**env, "AGENTCODER_CONCURRENT_JOBS": str(per_process)}) for log in logs[1:]]
        wait_until(lambda: all("started:" in (scratch / f"process-{n}.log").read_text() for n in range(1, processes + 1))
                   and _healthy(port), 120, "serve and the workers starting")
        standin.webhook_url = f"http://127.0.0.1:{port}/webhooks"
        issues = [standin.create_issue(OWNER, NAME, f"slugify keeps punctuation ({n})",
                                       "slugify('Hello, World!') should give 'hello-world'.") for n in range(jobs)]
        queue = queue_from_url(database_url)
        first = time.time()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda n: standin.label_issue(OWNER, NAME, n, "agentcoder", "maint").status_code,
                                     issues))
        if statuses != [202] * jobs:
            sys.exit(f"deliveries not all queued: {statuses}")
        wait_until(lambda: len(done := queue.recent(jobs + 1)) == jobs and all(j.state in FINAL_STATES for j in done),
                   1800, "all jobs finishing")
        finished = queue.recent(jobs + 1)
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            process.wait(60)
        if queue is not None:
            queue.close()
        models.stop()
        standin.stop()
    states = sorted({j.state for j in finished})
    if states != ["done"]:
        sys.exit(f"not every job succeeded: {[(j.id, j.state, j.detail) for j in finished]}")
    latencies = [j.started_at - j.created_at for j in finished]
    wall = max(j.finished_at for j in finished) - first
    return {"jobs_per_minute": jobs / wall * 60, "latency_p50": statistics.median(latencies),
            "latency_max": max(latencies), "wall_s": wall,
            "pickup_s": min(latencies)}


QUEUE_WORKER = textwrap.dedent("""
    import sys, threading, time
    from bot.app.queue import JobResult
    from bot.app.engines import queue_from_url
    from bot.app.workers import WorkerPool

    url, concurrency, work_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    queue = queue_from_url(url)
    pool = WorkerPool(queue, lambda job, cancelled: time.sleep(work_s) or JobResult("ok"), concurrency,
                      poll_interval_s=0.2)
    pool.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    pool.stop(10)
""")


def run_queue_only(database_url: str, processes: int, per_process: int, jobs: int, work_ms: int) -> dict:
    """P worker processes with a job that only sleeps: jobs/min and claim latency of the queue itself."""
    from bot.app.queue import Job

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    queue = queue_from_url(database_url)
    workers = [subprocess.Popen([sys.executable, "-c", QUEUE_WORKER, database_url, str(per_process),
                                 str(work_ms / 1000)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(processes)]
    try:
        for worker in workers:
            if worker.stdout.readline().strip() != "ready":
                sys.exit("a queue worker did not start")
        first = time.time()
        for n in range(jobs):
            queue.enqueue(Job(repo="bench/queue", installation_id=1, issue_number=n + 1, trigger="label",
                              sender="maint", delivery_id=f"q{n}"))
        wait_until(lambda: all(j.state == "done" for j in queue.recent(jobs)), 600, "the queue-only jobs")
        finished = queue.recent(jobs)
    finally:
        for worker in workers:
            worker.stdin.close()
        for worker in workers:
            worker.wait(30)
        queue.close()
    # Drained from the first start to the last end, so the rate is the workers', not the enqueuing loop's.
    wall = max(j.finished_at for j in finished) - min(j.started_at for j in finished)
    enqueued = max(j.created_at for j in finished) - first
    latencies = [j.started_at - j.created_at for j in finished]
    return {"jobs_per_minute": jobs / wall * 60, "latency_p50": statistics.median(latencies),
            "latency_max": max(latencies), "enqueue_per_s": jobs / enqueued}


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def burst(database_url: str, deliveries: int) -> dict:
    """The webhook edge over one engine: `deliveries` signed deliveries from 50 clients at once."""
    settings = load_settings(webhook_secret=SECRET, database_url=database_url)
    queue = queue_from_url(database_url)
    server = ThreadedServer(create_app(settings, queue, bot_login="agentcoder[bot]")).start()
    local = threading.local()
    clients: list[httpx.Client] = []
    senders = min(50, deliveries)
    gate = threading.Barrier(senders, timeout=60)  # every client connected before the burst starts

    def send(issue: int) -> tuple[float, int]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=server.url, trust_env=False, timeout=60)
            clients.append(local.client)
            local.client.get("/healthz")
            gate.wait()
        body = json.dumps({"action": "labeled", "label": {"name": "agentcoder"},
                           "issue": {"number": issue, "title": "t", "user": {"login": "a", "type": "User"}},
                           "repository": {"full_name": "octo/widgets"}, "installation": {"id": 1},
                           "sender": {"login": "maint", "type": "User"}}).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "issues",
                   "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(SECRET, body)}
        began = time.perf_counter()
        response = local.client.post("/webhooks", content=body, headers=headers)
        return (time.perf_counter() - began) * 1000, response.status_code

    try:
        with ThreadPoolExecutor(senders) as pool:
            results = list(pool.map(send, range(1, deliveries + 1)))
    finally:
        for client in clients:
            client.close()
        server.stop()
        queue.close()
    latencies = [ms for ms, _ in results]
    if sorted({status for _, status in results}) != [202]:
        sys.exit(f"burst: not every delivery was queued: {sorted({s for _, s in results})}")
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 0.99), "max": max(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4, help="total jobs at once, split over the processes")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--queue-jobs", type=int, default=400)
    parser.add_argument("--work-ms", type=int, default=50, help="what one queue-only job does: sleep this long")
    parser.add_argument("--skip-jobs", action="store_true", help="skip the whole-App jobs")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    engines = args.engines.split(",")
    if any(args.concurrency % n for n in counts) or not 1 <= args.jobs <= 200 or not 1 <= args.burst <= 5000:
        parser.error("--concurrency must divide by every --processes count; 1 <= --jobs <= 200; 1 <= --burst <= 5000")
    postgres = ThrowawayPostgres(fsync=True).start() if "postgresql" in engines else None
    try:
        with tempfile.TemporaryDirectory(prefix="agentcoder-scaleout-") as tmp:
            scratch = Path(tmp)

            def new_store(engine: str, label: str) -> str:
                if engine == "postgresql":
                    return postgres.new_database("bench")
                return f"sqlite:///{scratch / label}.db"

            if not args.skip_jobs:
                print(f"{args.jobs} jobs (whole App jobs: sandbox, scripted model, stand-in GitHub), "
                      f"total concurrency {args.concurrency}")
                print("| engine | worker processes | jobs each | jobs/min | latency p50 | latency max | first pickup |")
                print("|---|---:|---:|---:|---:|---:|---:|")
                for engine in engines:
                    for count in counts:
                        label = f"{engine}-{count}"
                        (scratch / label).mkdir()
                        figures = run_app(new_store(engine, label), count, args.concurrency // count, args.jobs,
                                          scratch / label)
                        print(f"| {engine} | {count} | {args.concurrency // count} | {figures['jobs_per_minute']:.1f}"
                              f" | {figures['latency_p50']:.2f} s | {figures['latency_max']:.2f} s"
                              f" | {figures['pickup_s']:.2f} s |", flush=True)
            print(f"\nqueue only: {args.queue_jobs} jobs that each sleep {args.work_ms} ms, total concurrency"
                  f" {args.concurrency}")
            print("| engine | worker processes | jobs each | jobs/min | latency p50 | latency max | enqueued/s |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for engine in engines:
                for count in counts:
                    figures = run_queue_only(new_store(engine, f"queue-{engine}-{count}"), count,
                                             args.concurrency // count, args.queue_jobs, args.work_ms)
                    print(f"| {engine} | {count} | {args.concurrency // count} | {figures['jobs_per_minute']:.0f}"
                          f" | {figures['latency_p50']:.2f} s | {figures['latency_max']:.2f} s"
                          f" | {figures['enqueue_per_s']:.0f} |", flush=True)
            print(f"\nwebhook ack under a burst of {args.burst} deliveries from 50 clients")
            print("| engine | p50 | p99 | max |")
            print("|---|---:|---:|---:|")
            for engine in engines:
                figures = burst(new_store(engine, f"burst-{engine}"), args.burst)
                print(f"| {engine} | {figures['p50']:.1f} ms | {figures['p99']:.1f} ms | {figures['max']:.1f} ms |",
                      flush=True)
    finally:
        if postgres is not None:
            postgres.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())

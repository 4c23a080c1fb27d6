"""How fast the dashboard's job list renders with 10,000 jobs in the store (target: under 100 ms).

Usage: python benchmarks/dashboard_render.py [--jobs 10000] [-n 50]

Fills a fresh SQLite store (the schema and indexes of SqliteQueue) with jobs spread over 30 days, 40
repositories and every state, each finished job with a realistic JSON iteration log, then times
GET / (the list with its 24 h and 7 d totals), the list filtered by state and by repository, and one
job page, over real HTTP (uvicorn on 127.0.0.1, Bearer token). Prints milliseconds per request and
SQLite's query plans, which show the indexes in use.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app.metrics import Metrics  # noqa: E402
from bot.app.sqlite_queue import SqliteQueue  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.dev.serving import ThreadedServer  # noqa: E402
from bot.loop.outcome import GeneratedTest, Iteration, Outcome, Stop, TestSummary, Usage  # noqa: E402
from webhooks.app import create_app  # noqa: E402

TOKEN = "benchmark-admin-token"
STATES = ["done"] * 14 + ["failed"] * 3 + ["cancelled"] * 2 + ["queued", "running"]


def sample_outcome(issue: int, resolved: bool) -> dict:
    outcome = Outcome(stop=Stop.RESOLVED if resolved else Stop.NOT_RESOLVED,
                      stop_reason="resolved in iteration 2" if resolved else "not resolved after 5 iterations",
                      issue_title=f"Issue {issue}: something is off", issue_number=issue,
                      test_file=f"tests/agentcoder/test_issue_{issue}.py", reproduced=True,
                      baseline=TestSummary(passed=120), branch=f"agentcoder/issue-{issue}", commit="0" * 40)
    outcome.generated_tests = [GeneratedTest(f"tests/agentcoder/test_issue_{issue}.py::test_{n}", "fail_to_pass",
                                             "checks the reported behaviour") for n in range(4)]
    outcome.tokens["programmer"] = Usage(9000, 1500, 2, 12.0, "gpt-4o-mini", 0.00225)
    outcome.tokens["test_designer"] = Usage(4000, 900, 1, 5.0, "gpt-4o-mini", 0.00114)
    for number in (1, 2):
        outcome.iterations.append(Iteration(number, "a plan", ["pkg/module.py"], [], TestSummary(passed=120),
                                            TestSummary(passed=3, failed=1, failing=["t::x"]), [],
                                            "FAILED t::x\n" + "E   assert 1 == 2\n" * 40, {"programmer": Usage(4500, 750, 1)},
                                            20.0, 6.0, 12.0))
    return outcome.to_json()


def fill(path: Path, jobs: int, seed: int = 7) -> None:
    """Write `jobs` jobs in one transaction (the queue's own API commits each with an fsync)."""
    SqliteQueue(path).close()  # the schema, the migrations and the indexes
    rng = random.Random(seed)
    now = time.time()
    logs = {True: json.dumps(sample_outcome(1, True)), False: json.dumps(sample_outcome(1, False))}
    rows = []
    for n in range(jobs):
        created = now - (jobs - n) * (30 * 24 * 3600 / jobs)
        state = rng.choice(STATES) if n >= jobs - 50 else rng.choice(STATES[:-2])
        ran = state in {"done", "failed"}
        resolved = ran and rng.random() < 0.6
        rows.append((f"org{n % 40}/repo{n % 40}", 1, 1 + n % 500, rng.choice(["label", "retry"]), "maintainer",
                     f"delivery-{n}", "", state, created, created + 2, created + 300 if state not in {"queued", "running"} else None,
                     "opened PR #7" if resolved else "not resolved: not resolved after 5 iterations",
                     ("resolved" if resolved else "not_resolved") if ran else None, f"Issue {n}: something is off",
                     2 if ran else None, 15400 if ran else None, 0.00339 if ran else None, logs[resolved] if ran else None))
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO jobs (repo, installation_id, issue_number, trigger, sender, delivery_id, guidance, state,"
            " created_at, started_at, finished_at, detail, stop, title, iterations, tokens, cost_usd, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()


def timed(client: httpx.Client, path: str, runs: int) -> list[float]:
    client.get(path).raise_for_status()  # warm
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=50, help="requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentcoder-dashboard-bench-") as tmp:
        path = Path(tmp) / "jobs.db"
        started = time.perf_counter()
        fill(path, args.jobs)
        print(f"filled {args.jobs} jobs in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 1e6:.1f} MB)")
        queue = SqliteQueue(path)
        settings = load_settings(webhook_secret="s", admin_token=TOKEN, github_api_url="https://api.github.com")
        app = create_app(settings, queue, bot_login="agentcoder[bot]", metrics=Metrics(queue.count_by_state))
        pages = {"job list (GET /)": "/", "filtered by state (?state=failed)": "/?state=failed",
                 "filtered by repository (?repo=org7/repo7)": "/?repo=org7/repo7",
                 f"one job page (/jobs/{args.jobs // 2})": f"/jobs/{args.jobs // 2}", "metrics (/metrics)": "/metrics"}
        with ThreadedServer(app) as server, httpx.Client(base_url=server.url, trust_env=False, timeout=30,
                                                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            print(f"{'page':45} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
            for label, path_ in pages.items():
                times = sorted(timed(client, path_, args.n))
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(f"{label:45} {statistics.median(times):10.1f} {p95:8.1f} {times[-1]:8.1f}")
        db = sqlite3.connect(path)
        day = time.time() - 7 * 24 * 3600
        for label, sql, params in [
            ("list", "SELECT id FROM jobs ORDER BY id DESC LIMIT 100", ()),
            ("by state", "SELECT id FROM jobs WHERE state = ? ORDER BY id DESC LIMIT 100", ("failed",)),
            ("by repo", "SELECT id FROM jobs WHERE repo = ? ORDER BY id DESC LIMIT 100", ("org7/repo7",)),
            ("totals", "SELECT COUNT(*), SUM(stop = 'resolved'), SUM(tokens), SUM(cost_usd) FROM jobs"
                       " WHERE created_at >= ?", (day,)),
        ]:
            plan = "; ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            print(f"plan {label:9} {plan}")
        db.close()
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

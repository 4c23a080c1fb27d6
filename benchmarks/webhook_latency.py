"""Webhook ack latency: start the app under uvicorn on 127.0.0.1, send N signed deliveries, print p50/p99.

Usage: python benchmarks/webhook_latency.py [-n 300] [--concurrency 1]
Each delivery is a distinct `issues.labeled` event, so every request takes the full path:
verify the signature, record the delivery id, route, and commit a queued job to SQLite.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bot.app.sqlite_queue import SqliteQueue
from bot.config import load_settings
from bot.dev.serving import ThreadedServer
from webhooks.app import create_app

SECRET = "benchmark-webhook-secret"
MAX_DELIVERIES = 100_000


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def delivery(issue: int) -> tuple[bytes, dict[str, str]]:
    """One signed `issues.labeled` delivery, headers as GitHub sends them."""
    body = json.dumps({
        "action": "labeled",
        "label": {"name": "agentcoder"},
        "issue": {"number": issue, "title": f"Issue {issue}", "user": {"login": "alice", "type": "User"}},
        "repository": {"full_name": "octo/widgets"},
        "installation": {"id": 1},
        "sender": {"login": "maint", "type": "User"},
    }).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    return body, headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--deliveries", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1, help="clients sending at the same time")
    args = parser.parse_args()
    if not 1 <= args.deliveries <= MAX_DELIVERIES or not 1 <= args.concurrency <= 64:
        parser.error(f"deliveries must be 1..{MAX_DELIVERIES}, concurrency 1..64")

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        settings = load_settings(webhook_secret=SECRET, database_url=f"sqlite:///{db}")
        queue = SqliteQueue(db)
        server = ThreadedServer(create_app(settings, queue, bot_login="agentcoder[bot]")).start()
        local = threading.local()
        clients: list[httpx.Client] = []

        def send(issue: int) -> tuple[float, int]:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=server.url, trust_env=False, timeout=10)
                clients.append(local.client)
            body, headers = delivery(issue)
            started = time.perf_counter()
            response = local.client.post("/webhooks", content=body, headers=headers)
            return (time.perf_counter() - started) * 1000, response.status_code

        try:
            send(MAX_DELIVERIES + 1)  # warm-up: first connection and first SQLite write
            wall = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(send, range(1, args.deliveries + 1)))
            wall = time.perf_counter() - wall
        finally:
            for client in clients:
                client.close()
            server.stop()
        queued = len(queue.recent(MAX_DELIVERIES + 1)) - 1
        queue.close()

    latencies = [ms for ms, _ in results]
    statuses = sorted({status for _, status in results})
    print(f"{args.deliveries} signed deliveries, concurrency {args.concurrency}, statuses {statuses}, "
          f"{queued} jobs queued, {args.deliveries / wall:.0f} deliveries/s")
    print(f"ack latency: p50 {statistics.median(latencies):.2f} ms, p99 {percentile(latencies, 0.99):.2f} ms, "
          f"max {max(latencies):.2f} ms")
    return 0 if statuses == [202] and queued == args.deliveries else 1


if __name__ == "__main__":
    sys.exit(main())

"""Prometheus metrics of one bot process: deliveries, jobs, sandbox runs, model calls, tokens and dollars.

Counters and histograms count what happens in this process (Prometheus adds up the processes);
the number of queued and running jobs is read from the shared store at each scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.app.queue import Job, JobResult
from bot.loop.outcome import Prices

# Seconds: a job takes minutes; a wait in the queue from milliseconds to hours; a test run seconds to minutes.
JOB_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600)
SANDBOX_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The bot's metrics in their own registry (one per service, so several can live in one process)."""

    def __init__(self, count_by_state: Callable[[], Mapping[str, int]] | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter("agentcoder_webhook_deliveries", "Webhook deliveries by event and outcome",
                                  ["event", "outcome"], registry=r)
        self.jobs = Counter("agentcoder_jobs_finished", "Finished jobs by trigger, final state and how the loop stopped",
                            ["trigger", "state", "stop"], registry=r)
        self.job_duration = Histogram("agentcoder_job_duration_seconds", "Time from a job's start to its end",
                                      ["trigger"], buckets=JOB_BUCKETS, registry=r)
        self.queue_wait = Histogram("agentcoder_job_queue_wait_seconds", "Time a job waited in the queue",
                                    buckets=WAIT_BUCKETS, registry=r)
        self.sandbox = Histogram("agentcoder_sandbox_run_duration_seconds",
                                 "Sandbox time: setup (environment image, cached or built) and test runs",
                                 ["phase"], buckets=SANDBOX_BUCKETS, registry=r)
        self.model_calls = Counter("agentcoder_model_calls", "Model calls by agent and model", ["agent", "model"],
                                   registry=r)
        self.model_tokens = Counter("agentcoder_model_tokens", "Model tokens by agent, model and kind",
                                    ["agent", "model", "kind"], registry=r)
        self.model_cost = Counter("agentcoder_model_cost_usd", "Model cost in US dollars by agent and model"
                                  " (calls to models without a configured price are not counted)",
                                  ["agent", "model"], registry=r)
        self.unpriced_calls = Counter("agentcoder_model_unpriced_calls", "Model calls whose model has no configured"
                                      " price (their cost is unknown)", ["agent", "model"], registry=r)
        if count_by_state is not None:
            r.register(_JobsByState(count_by_state))

    def delivery(self, event: str, outcome: str) -> None:
        """Count one webhook delivery (outcome: queued, ignored, duplicate, unauthorized, too_large, bad_request, error)."""
        self.deliveries.labels(event or "unknown", outcome).inc()

    def job_finished(self, job: Job, state: str, result: JobResult, finished_at: float | None = None) -> None:
        """Count a finished job, its duration and how long it waited in the queue."""
        finished_at = time.time() if finished_at is None else finished_at
        self.jobs.labels(job.trigger, state, result.stop or "none").inc()
        if job.started_at is not None:
            self.job_duration.labels(job.trigger).observe(max(0.0, finished_at - job.started_at))
            if job.created_at is not None:
                self.queue_wait.observe(max(0.0, job.started_at - job.created_at))

    def model_call(self, agent: str, model: str, prompt_tokens: int, completion_tokens: int,
                   cost_usd: float | None) -> None:
        """Count one model answer with its tokens and (when the model has a price) its cost."""
        agent = str(agent)
        self.model_calls.labels(agent, model).inc()
        self.model_tokens.labels(agent, model, "prompt").inc(prompt_tokens)
        self.model_tokens.labels(agent, model, "completion").inc(completion_tokens)
        if cost_usd is None:
            self.unpriced_calls.labels(agent, model).inc()
        else:
            self.model_cost.labels(agent, model).inc(cost_usd)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything above."""
        return generate_latest(self.registry)


class _JobsByState(Collector):
    """`agentcoder_jobs{state}`: queued and running jobs now, read from the store at each scrape."""

    def __init__(self, count_by_state: Callable[[], Mapping[str, int]]):
        self._count_by_state = count_by_state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._count_by_state()
        family = GaugeMetricFamily("agentcoder_jobs", "Jobs queued or running now", labels=["state"])
        for state in ("queued", "running"):
            family.add_metric([state], counts.get(state, 0) + (counts.get("admitting", 0) if state == "queued" else 0))
        yield family


class MeteredSandbox:
    """A sandbox whose setup (the environment image) and test runs are timed into the metrics."""

    def __init__(self, sandbox, metrics: Metrics):
        self._sandbox = sandbox
        self._metrics = metrics

    def run_tests(self, repo: Path, config, extra_files: Mapping[str, str] | None = None, selection=(),
                  image: str | None = None):
        """The wrapped sandbox's test run, its setup and test phases timed separately."""
        if image is None:
            started = time.monotonic()
            try:
                image = self._sandbox.environment_image(repo, config)
            finally:
                self._metrics.sandbox.labels("setup").observe(time.monotonic() - started)
        started = time.monotonic()
        try:
            return self._sandbox.run_tests(repo, config, extra_files, selection, image=image)
        finally:
            self._metrics.sandbox.labels("test").observe(time.monotonic() - started)

    def __getattr__(self, name: str):
        return getattr(self._sandbox, name)


class MeteredModel:
    """A model client whose answers are counted (calls, tokens, dollars) by agent and model."""

    def __init__(self, model, metrics: Metrics, prices: Prices):
        self._model = model
        self._metrics = metrics
        self._prices = prices

    def complete(self, role, messages: list[dict], **options):
        """The wrapped client's answer, counted."""
        reply = self._model.complete(role, messages, **options)
        price = self._prices.get(reply.model)
        cost = None if price is None else price.cost(reply.prompt_tokens, reply.completion_tokens)
        self._metrics.model_call(role, reply.model, reply.prompt_tokens, reply.completion_tokens, cost)
        return reply

    def __getattr__(self, name: str):
        return getattr(self._model, name)

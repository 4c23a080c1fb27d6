"""The durable job queue (the worker pool that drains it is in `bot/app/workers.py`).

Two engines behind one interface (`JobQueue`): the embedded one, one SQLite file (`bot/app/sqlite_queue.py`),
and the distributed one on PostgreSQL with procrastinate (`bot/app/pg_queue.py`). A job moves
queued → running → done | failed | cancelled. Workers register and send heartbeats; a job left
running by a worker whose heartbeat stopped (killed, power cut) goes back to queued with its
`restarts` counted, so a delivery that was answered 2xx is never lost. One job per issue at a
time: a new trigger for the same issue cancels the queued one and flags the running one — but a webhook's
trigger does so only once its sender's permission is checked (`admit`): a refused trigger changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

FINAL_STATES = ("done", "failed", "cancelled")
# GitHub may redeliver days later (manual redelivery); older delivery ids are forgotten.
DELIVERY_RETENTION_S = 30 * 24 * 3600
# Bounds on what one job may store for the dashboard.
PROGRESS_MESSAGE_CHARS = 500
PROGRESS_MESSAGES_KEPT = 200
# A worker silent this long is taken for dead and its running job is queued again (both engines).
STALLED_AFTER_S = 30.0

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
    # From the loop's outcome, once recorded (record_outcome): for the job list.
    title: str = ""
    iterations: int | None = None
    tokens: int | None = None  # None: the loop did not run
    cost_usd: float | None = None  # None: the loop did not run, or a model without a price was used
    comment_id: int | None = None  # the comment that asked (a retry), for the 👀 reaction
    comment_kind: str = ""  # "issue_comment" | "review_comment" | "review" | "" (a label)
    restarts: int = 0  # times a worker died (or shut down) with this job running and it was queued again


@dataclass(frozen=True)
class JobResult:
    """How a job ended, as the handler reports it: a one-line detail, and when the loop ran its stop and log."""

    detail: str
    stop: str | None = None
    outcome: dict | None = None  # the JSON iteration log (`Outcome.to_json()`, plus "pull_request" when one was opened)


@dataclass(frozen=True)
class JobRecord:
    """One job as the dashboard shows it: the job, its JSON iteration log and its progress messages."""

    job: Job
    outcome: dict | None = None
    progress: list[tuple[float, str]] = field(default_factory=list)  # (unix time, message), oldest first


@dataclass(frozen=True)
class JobTotals:
    """Totals over the jobs created since some time, for the dashboard."""

    jobs: int = 0
    resolved: int = 0
    tokens: int = 0
    cost_usd: float = 0.0  # of the jobs whose cost is known
    unpriced: int = 0  # jobs that ran a model without a configured price


class JobQueue(Protocol):
    """What the webhook edge and the worker pool need from a queue (either engine)."""

    def record_delivery(self, delivery_id: str) -> bool: ...
    def forget_delivery(self, delivery_id: str) -> None: ...
    # admitted=False: a webhook's trigger, which supersedes nothing and is not claimed before `admit`.
    def enqueue(self, job: Job, *, admitted: bool = True) -> Job: ...
    # The oldest job not admitted yet, now `admitting` and held by `worker_id` (its sender is being checked).
    def claim_unadmitted(self, worker_id: int | None = None) -> Job | None: ...
    # Its sender may trigger it: it supersedes the older jobs of its issue; False (and it is cancelled) when a
    # newer admitted job of the issue exists already.
    def admit(self, job_id: int) -> bool: ...
    def register_worker(self) -> int: ...
    def heartbeat(self, worker_id: int) -> None: ...
    def unregister_worker(self, worker_id: int) -> None: ...
    def claim(self, worker_id: int | None = None) -> Job | None: ...
    def finish(self, job_id: int, state: str, detail: str = "", stop: str | None = None,
               worker_id: int | None = None) -> bool: ...
    def hand_back(self, job_id: int, worker_id: int) -> bool: ...
    def is_cancelled(self, job_id: int) -> bool: ...
    def recover_stalled(self, stalled_after_s: float) -> list[int]: ...
    def requeue_interrupted(self) -> int: ...
    # Newest first; `state`/`repo` filter exactly. The dashboard lists 100 of 10,000+ jobs: index (state, id), (repo, id).
    def recent(self, limit: int = 50, *, state: str | None = None, repo: str | None = None) -> list[Job]: ...
    # What the dashboard and /metrics read, and the handler and the pool write for them (every engine keeps them):
    # a progress line of a running job (cut to PROGRESS_MESSAGE_CHARS, the newest PROGRESS_MESSAGES_KEPT kept);
    def record_progress(self, job_id: int, message: str) -> None: ...
    # the JSON log when the loop ran (before finish): stored whole, and its issue_title, len(iterations),
    # total_tokens and cost_usd (None: unknown) become Job.title, .iterations, .tokens, .cost_usd;
    def record_outcome(self, job_id: int, outcome: dict) -> None: ...
    # one job with that log (None when none was recorded) and its progress lines, oldest first;
    def job_record(self, job_id: int) -> JobRecord | None: ...
    # jobs created since `since`: count, resolved (stop 'resolved'), tokens, known cost, jobs of unknown cost;
    def totals(self, since: float) -> JobTotals: ...
    # {state: number of jobs}, for the queued and running gauges.
    def count_by_state(self) -> dict[str, int]: ...
    def get(self, job_id: int) -> Job | None: ...
    def close(self) -> None: ...


def database_label(database_url: str) -> str:
    """The URL as it may be shown in logs and messages: any password replaced by ***."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))

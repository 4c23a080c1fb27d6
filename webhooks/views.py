"""How the dashboard writes numbers, times and links (helpers for its templates). Pure."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from bot.app.queue import Job
from bot.app.reports import KIND_LABEL, dollars


def github_web_url(api_url: str) -> str:
    """Where people see repositories: github.com for api.github.com, the host for Enterprise's /api/v3."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc == "api.github.com":
        return "https://github.com"
    if parts.path.endswith("/api/v3"):
        return f"{parts.scheme}://{parts.netloc}{parts.path[: -len('/api/v3')]}"
    return api_url.rstrip("/")


def when(timestamp: float | None) -> str:
    """`2026-11-21 14:30:05` (UTC), or a dash."""
    return "—" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def clock(timestamp: float) -> str:
    """`14:30:05` (UTC)."""
    return time.strftime("%H:%M:%S", time.gmtime(timestamp))


def duration(seconds: float | None) -> str:
    """`42.0 s`, `3 min 05 s`, `1 h 02 min`, or a dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def duration_of(job: Job, now: float | None = None) -> str:
    """How long a job ran (or has been running)."""
    if job.started_at is None:
        return "—"
    end = job.finished_at if job.finished_at is not None else (time.time() if now is None else now)
    return duration(max(0.0, end - job.started_at))


def share(part: int, whole: int) -> str:
    """`3 (60%)`, or `0` of nothing."""
    return f"{part} ({100 * part / whole:.0f}%)" if whole else "0"


def counts(summary: dict) -> str:
    """A test run's counts as the PR's log writes them."""
    text = f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, {summary.get('errors', 0)} errors"
    if summary.get("skipped"):
        text += f", {summary['skipped']} skipped"
    return text + (f" ({summary['problem']})" if summary.get("problem") else "")


def kind_label(kind: str) -> str:
    """fail-to-pass, regression or unverified."""
    return KIND_LABEL.get(kind, kind)


TEMPLATE_HELPERS = {"when": when, "clock": clock, "duration": duration, "duration_of": duration_of, "share": share,
                    "counts": counts, "kind_label": kind_label, "dollars": dollars}

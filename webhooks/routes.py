"""Webhook routing: (event, payload) → the Job to run, or None. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any

from bot.app.queue import Job

RETRY_COMMAND = re.compile(r"/agentcoder\s+retry(?=\s|$)", re.IGNORECASE)


def route(event: str, payload: dict, *, trigger_label: str, bot_login: str, delivery_id: str) -> Job | None:
    """The job a delivery asks for: a trigger label on an issue, or `/agentcoder retry` on the bot's PR."""
    try:
        sender = payload["sender"]
        if _is_bot(sender):
            return None
        if event == "issues" and payload["action"] == "labeled":
            return _labeled(payload, trigger_label, delivery_id)
        if event == "issue_comment" and payload["action"] == "created":
            return _retry(payload, bot_login, delivery_id)
    except (KeyError, TypeError, AttributeError, ValueError):
        # A payload that is not shaped like GitHub's is not ours to act on.
        return None
    return None


def _labeled(payload: dict, trigger_label: str, delivery_id: str) -> Job | None:
    issue = payload["issue"]
    if issue.get("pull_request"):
        return None
    # GitHub treats label names case-insensitively ("AgentCoder" and "agentcoder" are one label).
    if _text(payload["label"]["name"]).casefold() != trigger_label.casefold():
        return None
    return _job(payload, issue, "label", delivery_id)


def _retry(payload: dict, bot_login: str, delivery_id: str) -> Job | None:
    issue = payload["issue"]
    if not issue.get("pull_request"):
        return None
    if _text(issue["user"]["login"]).casefold() != bot_login.casefold():
        return None
    body = _text(payload["comment"]["body"]).strip()
    command = RETRY_COMMAND.match(body)
    if command is None:
        return None
    return _job(payload, issue, "retry", delivery_id, guidance=body[command.end():].strip())


def _job(payload: dict, issue: dict, trigger: str, delivery_id: str, guidance: str = "") -> Job:
    return Job(
        repo=_text(payload["repository"]["full_name"]),
        installation_id=_number(payload["installation"]["id"]),
        issue_number=_number(issue["number"]),
        trigger=trigger,
        sender=_text(payload["sender"]["login"]),
        delivery_id=delivery_id,
        guidance=guidance,
    )


def _is_bot(sender: Any) -> bool:
    return sender["type"] == "Bot" or _text(sender["login"]).lower().endswith("[bot]")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a positive integer")
    return value

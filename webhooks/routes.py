"""Webhook routing: (event, payload) → the Job to run, or None. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any

from bot.app.queue import Job

RETRY_COMMAND = re.compile(r"/agentcoder\s+retry(?=\s|$)", re.IGNORECASE)


def route(event: str, payload: dict, *, trigger_label: str, bot_login: str | None, delivery_id: str) -> Job | None:
    """The job a delivery asks for: a trigger label on an issue, or `/agentcoder retry` on the bot's PR (in a
    PR comment, a review, or a review comment). With `bot_login` None (not learned yet: GitHub was not
    reachable) a retry on any PR is queued and the job checks the PR's author."""
    try:
        sender = payload["sender"]
        if _is_bot(sender):
            return None
        if event == "issues" and payload["action"] == "labeled":
            return _labeled(payload, trigger_label, delivery_id)
        if event == "issue_comment" and payload["action"] == "created":
            return _retry(payload, payload["issue"], payload["comment"], "issue_comment", bot_login, delivery_id)
        if event == "pull_request_review" and payload["action"] == "submitted":
            return _retry(payload, payload["pull_request"], payload["review"], "review", bot_login, delivery_id)
        if event == "pull_request_review_comment" and payload["action"] == "created":
            return _retry(payload, payload["pull_request"], payload["comment"], "review_comment", bot_login,
                          delivery_id)
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


def _retry(payload: dict, target: dict, comment: dict, kind: str, bot_login: str | None,
           delivery_id: str) -> Job | None:
    # An issue_comment's target is an issue, a PR only when it carries `pull_request`; review events are on PRs.
    if kind == "issue_comment" and not target.get("pull_request"):
        return None
    if bot_login is not None and _text(target["user"]["login"]).casefold() != bot_login.casefold():
        return None
    if not isinstance(comment.get("body"), str):  # a review without text (an approval alone)
        return None
    body = _text(comment["body"]).strip()
    command = RETRY_COMMAND.match(body)
    if command is None:
        return None
    return _job(payload, target, "retry", delivery_id, guidance=body[command.end():].strip(),
                comment_id=_number(comment["id"]) if "id" in comment else None, comment_kind=kind)


def _job(payload: dict, issue: dict, trigger: str, delivery_id: str, guidance: str = "",
         comment_id: int | None = None, comment_kind: str = "") -> Job:
    return Job(
        repo=_text(payload["repository"]["full_name"]),
        installation_id=_number(payload["installation"]["id"]),
        issue_number=_number(issue["number"]),
        trigger=trigger,
        sender=_text(payload["sender"]["login"]),
        delivery_id=delivery_id,
        guidance=guidance,
        comment_id=comment_id,
        comment_kind=comment_kind,
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

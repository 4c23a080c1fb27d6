"""Webhook payloads shaped like GitHub's, for the routing and edge tests."""

from __future__ import annotations

BOT = "agentcoder[bot]"
REPO = "octo/widgets"
INSTALLATION = 4242


def user(login: str = "maint", kind: str = "User") -> dict:
    """A GitHub user object (`kind` is `User` or `Bot`)."""
    return {"login": login, "type": kind}


def labeled(label: str = "agentcoder", *, issue: int = 7, sender: dict | None = None) -> dict:
    """`issues` / `labeled`: someone put `label` on issue #`issue`."""
    return {
        "action": "labeled",
        "label": {"name": label},
        "issue": {"number": issue, "title": "Crash on empty input", "user": user("alice")},
        "repository": {"full_name": REPO},
        "installation": {"id": INSTALLATION},
        "sender": sender or user(),
    }


def comment(body: str, *, pr_author: str = BOT, sender: dict | None = None, on_pr: bool = True) -> dict:
    """`issue_comment` / `created` on #12, a pull request opened by `pr_author` unless `on_pr` is False."""
    issue = {"number": 12, "user": user(pr_author, "Bot")}
    if on_pr:
        issue["pull_request"] = {"url": f"http://127.0.0.1/repos/{REPO}/pulls/12"}
    return {
        "action": "created",
        "comment": {"body": body, "user": sender or user()},
        "issue": issue,
        "repository": {"full_name": REPO},
        "installation": {"id": INSTALLATION},
        "sender": sender or user(),
    }


def review(body: str | None, *, pr_author: str = BOT, sender: dict | None = None) -> dict:
    """`pull_request_review` / `submitted` (review 77) on PR #12 opened by `pr_author`."""
    return {
        "action": "submitted",
        "review": {"id": 77, "body": body, "state": "commented", "user": sender or user()},
        "pull_request": {"number": 12, "user": user(pr_author, "Bot")},
        "repository": {"full_name": REPO},
        "installation": {"id": INSTALLATION},
        "sender": sender or user(),
    }


def review_comment(body: str, *, pr_author: str = BOT, sender: dict | None = None) -> dict:
    """`pull_request_review_comment` / `created` (comment 88) on a line of PR #12."""
    payload = review(body, pr_author=pr_author, sender=sender)
    del payload["review"]
    payload["action"] = "created"
    payload["comment"] = {"id": 88, "body": body, "path": "a.py", "line": 3, "user": payload["sender"]}
    return payload

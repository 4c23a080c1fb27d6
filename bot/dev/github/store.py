"""The stand-in's state: repositories, installations, tokens, issues and PRs, comments, reactions.

Records are plain dicts guarded by one lock; every reader gets a deep copy, so callers in
other threads never see a record change under them. Issues and PRs share one record per
number (a PR's record has a `pull` sub-dict), as they share one number sequence on GitHub.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
import threading
from datetime import datetime, timedelta, timezone

PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
TOKEN_ALPHABET = string.ascii_letters + string.digits


def now() -> datetime:
    """The current UTC time, to the second (GitHub's timestamps have no fractions)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


class Store:
    """Everything the stand-in remembers, safe to use from the server thread and the test thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.users: dict[str, dict] = {}
        self.installations: dict[int, dict] = {}
        self.repos: dict[tuple[str, str], dict] = {}
        self.tokens: dict[str, dict] = {}
        self.issues: dict[tuple[str, str, int], dict] = {}
        self.comments: dict[int, dict] = {}
        self.reactions: list[dict] = []
        self.review_comments: dict[int, dict] = {}
        self.permissions: dict[tuple[str, str, str], str] = {}
        self.labels: dict[str, int] = {}

    def next_id(self) -> int:
        """A fresh id, unique across all kinds of objects."""
        with self.lock:
            return next(self._ids)

    def user(self, login: str, kind: str | None = None) -> dict:
        """The user `login` ({"login", "id", "type"}), created on first sight; `kind` sets its type."""
        with self.lock:
            user = self.users.get(login)
            if user is None:
                user = self.users[login] = {"login": login, "id": self.next_id(),
                                            "type": "Bot" if login.endswith("[bot]") else "User"}
            if kind is not None:
                user["type"] = kind
            return dict(user)

    def label_id(self, name: str) -> int:
        """The id of label `name`, created on first use."""
        with self.lock:
            if name not in self.labels:
                self.labels[name] = self.next_id()
            return self.labels[name]

    # Repositories, installations, tokens

    def add_repo(self, owner: str, name: str, installation_id: int) -> dict:
        """Record a repository and the installation that covers it."""
        with self.lock:
            if (owner, name) in self.repos:
                raise ValueError(f"repository {owner}/{name} already exists")
            self.user(owner)
            self.installations.setdefault(installation_id, {"id": installation_id, "account": owner,
                                                            "created_at": now()})
            repo = self.repos[(owner, name)] = {
                "id": self.next_id(), "owner": owner, "name": name, "installation_id": installation_id,
                "default_branch": "main", "private": True, "created_at": now(), "next_number": 1,
            }
            return copy.deepcopy(repo)

    def repo(self, owner: str, name: str) -> dict | None:
        """The repository record, or None."""
        with self.lock:
            return copy.deepcopy(self.repos.get((owner, name)))

    def installation(self, installation_id: int) -> dict | None:
        """The installation record, or None."""
        with self.lock:
            return copy.deepcopy(self.installations.get(installation_id))

    def issue_token(self, installation_id: int, ttl: timedelta, permissions: dict[str, str]) -> dict:
        """A new installation access token: {"token", "installation_id", "expires_at", "permissions"}."""
        token = "ghs_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))
        record = {"token": token, "installation_id": installation_id, "expires_at": now() + ttl,
                  "permissions": dict(permissions)}
        with self.lock:
            self.tokens[token] = record
        return copy.deepcopy(record)

    def token_installation(self, token: str) -> int | None:
        """The installation an unexpired token was issued for, or None."""
        with self.lock:
            record = self.tokens.get(token)
        if record is None or record["expires_at"] <= datetime.now(timezone.utc):
            return None
        return record["installation_id"]

    # Permissions

    def set_permission(self, owner: str, name: str, login: str, permission: str) -> None:
        """Give `login` a role on the repository (admin, maintain, write, triage, read or none)."""
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}, not {permission!r}")
        with self.lock:
            self.user(login)
            self.permissions[(owner, name, login)] = permission

    def role(self, owner: str, name: str, login: str) -> str:
        """The role of `login` on the repository; the owner is admin, anyone unlisted has none."""
        with self.lock:
            explicit = self.permissions.get((owner, name, login))
        if explicit is not None:
            return explicit
        return "admin" if login == owner else "none"

    # Issues and pull requests

    def add_issue(self, owner: str, name: str, title: str, body: str | None, user: str,
                  pull: dict | None = None) -> dict:
        """Open an issue (or, with `pull`, a PR) under the repository's next number."""
        with self.lock:
            repo = self.repos[(owner, name)]
            number = repo["next_number"]
            repo["next_number"] += 1
            self.user(user)
            stamp = now()
            record = {
                "id": self.next_id(), "owner": owner, "repo": name, "number": number, "title": title,
                "body": body, "user": user, "state": "open", "locked": False, "labels": [],
                "created_at": stamp, "updated_at": stamp, "closed_at": None,
            }
            if pull is not None:
                record["pull"] = {"id": self.next_id(), "merged": False, **pull}
            self.issues[(owner, name, number)] = record
            return copy.deepcopy(record)

    def issue(self, owner: str, name: str, number: int) -> dict | None:
        """The issue or PR record with this number, or None."""
        with self.lock:
            return copy.deepcopy(self.issues.get((owner, name, number)))

    def update_issue(self, owner: str, name: str, number: int, **changes) -> dict:
        """Change fields of an issue or PR (title, body, state; for PRs also `pull` fields) and touch it."""
        with self.lock:
            record = self.issues[(owner, name, number)]
            for key, value in changes.items():
                if key in ("base", "draft", "merged"):
                    record["pull"][key] = value
                else:
                    record[key] = value
            record["updated_at"] = now()
            if "state" in changes:
                record["closed_at"] = record["updated_at"] if changes["state"] == "closed" else None
            return copy.deepcopy(record)

    def add_label(self, owner: str, name: str, number: int, label: str) -> dict:
        """Put a label on an issue or PR (once)."""
        self.label_id(label)
        with self.lock:
            record = self.issues[(owner, name, number)]
            if label not in record["labels"]:
                record["labels"].append(label)
                record["updated_at"] = now()
            return copy.deepcopy(record)

    def issues_of(self, owner: str, name: str) -> list[dict]:
        """All issue and PR records of a repository, by number."""
        with self.lock:
            found = [record for key, record in self.issues.items() if key[:2] == (owner, name)]
            return copy.deepcopy(sorted(found, key=lambda record: record["number"]))

    # Comments and reactions

    def add_comment(self, owner: str, name: str, number: int, body: str, user: str) -> dict:
        """Comment on an issue or PR."""
        with self.lock:
            issue = self.issues[(owner, name, number)]
            self.user(user)
            stamp = now()
            comment = {"id": self.next_id(), "owner": owner, "repo": name, "number": number, "body": body,
                       "user": user, "created_at": stamp, "updated_at": stamp}
            self.comments[comment["id"]] = comment
            issue["updated_at"] = stamp
            return copy.deepcopy(comment)

    def comment(self, owner: str, name: str, comment_id: int) -> dict | None:
        """The comment with this id in this repository, or None."""
        with self.lock:
            comment = self.comments.get(comment_id)
            if comment is None or (comment["owner"], comment["repo"]) != (owner, name):
                return None
            return copy.deepcopy(comment)

    def update_comment(self, comment_id: int, body: str) -> dict:
        """Replace a comment's body."""
        with self.lock:
            comment = self.comments[comment_id]
            comment["body"] = body
            comment["updated_at"] = now()
            return copy.deepcopy(comment)

    def comments_on(self, owner: str, name: str, number: int) -> list[dict]:
        """The comments of one issue or PR, oldest first."""
        with self.lock:
            found = [c for c in self.comments.values() if (c["owner"], c["repo"], c["number"]) == (owner, name, number)]
            return copy.deepcopy(sorted(found, key=lambda comment: comment["id"]))

    def add_reaction(self, owner: str, name: str, subject: str, subject_id: int, content: str,
                     user: str) -> tuple[dict, bool]:
        """React to an issue (`subject` "issue", id = number) or a comment ("comment"); (reaction, created?)."""
        with self.lock:
            for reaction in self.reactions:
                if (reaction["owner"], reaction["repo"], reaction["subject"], reaction["subject_id"],
                        reaction["content"], reaction["user"]) == (owner, name, subject, subject_id, content, user):
                    return copy.deepcopy(reaction), False
            self.user(user)
            reaction = {"id": self.next_id(), "owner": owner, "repo": name, "subject": subject,
                        "subject_id": subject_id, "content": content, "user": user, "created_at": now()}
            self.reactions.append(reaction)
            return copy.deepcopy(reaction), True

    def reactions_to(self, owner: str, name: str, subject: str, subject_id: int) -> list[dict]:
        """The reactions to one issue or comment."""
        with self.lock:
            return copy.deepcopy([r for r in self.reactions
                                  if (r["owner"], r["repo"], r["subject"], r["subject_id"]) == (owner, name, subject, subject_id)])

    def add_review_comment(self, owner: str, name: str, number: int, body: str, user: str, path: str | None,
                           line: int | None, commit_id: str) -> dict:
        """Seed a review comment on a PR."""
        with self.lock:
            if "pull" not in self.issues.get((owner, name, number), {}):
                raise KeyError(f"{owner}/{name}#{number} is not a pull request")
            self.user(user)
            stamp = now()
            comment = {"id": self.next_id(), "review_id": self.next_id(), "owner": owner, "repo": name,
                       "number": number, "body": body, "user": user, "path": path, "line": line,
                       "commit_id": commit_id, "created_at": stamp, "updated_at": stamp}
            self.review_comments[comment["id"]] = comment
            return copy.deepcopy(comment)

    def review_comments_on(self, owner: str, name: str, number: int) -> list[dict]:
        """The review comments of one PR, oldest first."""
        with self.lock:
            found = [c for c in self.review_comments.values()
                     if (c["owner"], c["repo"], c["number"]) == (owner, name, number)]
            return copy.deepcopy(sorted(found, key=lambda comment: comment["id"]))

    def snapshot(self, name: str):
        """A deep copy of one of the state collections, for inspection."""
        with self.lock:
            return copy.deepcopy(getattr(self, name))

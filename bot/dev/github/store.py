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
PLANS = ("free", "pro", "team", "enterprise")
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
        self.custom_roles: dict[tuple[str, str], str] = {}  # (owner, role name) → base permission
        self.verified: set[str] = set()  # commit shas GitHub itself made (and so signed)
        self.conversions: dict[str, dict] = {}  # manifest code → the App registration it yields

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

    def add_repo(self, owner: str, name: str, installation_id: int, *, private: bool = True, plan: str = "team",
                 default_branch: str = "main", archived: bool = False, signed_commits: bool = False) -> dict:
        """Record a repository and the installation that covers it, with GitHub's per-repository traits.

        `plan` is the owning account's (free, pro, team, enterprise): it decides whether drafts are allowed;
        `signed_commits` is a ruleset requiring verified signatures on every branch.
        """
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {PLANS}, not {plan!r}")
        with self.lock:
            if (owner, name) in self.repos:
                raise ValueError(f"repository {owner}/{name} already exists")
            self.user(owner)
            self.installations.setdefault(installation_id, {"id": installation_id, "account": owner,
                                                            "created_at": now()})
            repo = self.repos[(owner, name)] = {
                "id": self.next_id(), "owner": owner, "name": name, "installation_id": installation_id,
                "default_branch": default_branch, "private": private, "created_at": now(), "next_number": 1,
                "plan": plan, "archived": archived, "signed_commits": signed_commits,
            }
            return copy.deepcopy(repo)

    def repo(self, owner: str, name: str) -> dict | None:
        """The repository record, or None."""
        with self.lock:
            return copy.deepcopy(self.repos.get((owner, name)))

    def update_repo(self, owner: str, name: str, **changes) -> dict:
        """Change a repository's traits (archived, private, plan, signed_commits, default_branch)."""
        with self.lock:
            repo = self.repos[(owner, name)]
            repo.update(changes)
            return copy.deepcopy(repo)

    def installation(self, installation_id: int) -> dict | None:
        """The installation record, or None."""
        with self.lock:
            return copy.deepcopy(self.installations.get(installation_id))

    def issue_token(self, installation_id: int, ttl: timedelta, permissions: dict[str, str],
                    repositories: list[str] | None = None, *, app_id: int = 0, jwt_shaped: bool = True) -> dict:
        """A new installation access token: {"token", "installation_id", "expires_at", "permissions", "repositories"}.

        `repositories` (names) limits what the token sees; None means every repository of the installation.
        GitHub's tokens are `ghs_` and 36 characters, or (rolling out from 2026-04) `ghs_<app id>_<a JWT>`.
        """
        if jwt_shaped:
            parts = (secrets.token_urlsafe(24).rstrip("="), secrets.token_urlsafe(96).rstrip("="),
                     secrets.token_urlsafe(64).rstrip("="))
            token = f"ghs_{app_id}_" + ".".join(parts)
        else:
            token = "ghs_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))
        record = {"token": token, "installation_id": installation_id, "expires_at": now() + ttl,
                  "permissions": dict(permissions), "repositories": None if repositories is None else list(repositories)}
        with self.lock:
            self.tokens[token] = record
        return copy.deepcopy(record)

    def token_installation(self, token: str) -> int | None:
        """The installation an unexpired token was issued for, or None."""
        record = self.token(token)
        return None if record is None else record["installation_id"]

    def token(self, token: str) -> dict | None:
        """The record of an unexpired token, or None."""
        with self.lock:
            record = copy.deepcopy(self.tokens.get(token))
        if record is None or record["expires_at"] <= datetime.now(timezone.utc):
            return None
        return record

    # Permissions

    def add_custom_role(self, owner: str, role: str, base: str) -> None:
        """An organisation's custom repository role (e.g. "release-engineer"), inheriting from a base role."""
        if base not in PERMISSIONS[:-1]:
            raise ValueError(f"a custom role's base must be one of {PERMISSIONS[:-1]}, not {base!r}")
        with self.lock:
            self.custom_roles[(owner, role)] = base

    def base_role(self, owner: str, role: str) -> str:
        """The built-in role a (possibly custom) role stands on."""
        with self.lock:
            return self.custom_roles.get((owner, role), role)

    def set_permission(self, owner: str, name: str, login: str, permission: str) -> None:
        """Give `login` a role on the repository (admin, maintain, write, triage, read, none or a custom role)."""
        with self.lock:
            known = permission in PERMISSIONS or (owner, permission) in self.custom_roles
        if not known:
            raise ValueError(f"permission must be one of {PERMISSIONS} or a custom role, not {permission!r}")
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
                "body": body, "user": user, "state": "open", "locked": False, "labels": [], "assignees": [],
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
                if key in ("base", "draft", "merged", "head"):
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

    def mark_verified(self, sha: str) -> None:
        """Remember a commit GitHub made itself (through the Git Data API), so signed and verified."""
        with self.lock:
            self.verified.add(sha)

    def is_verified(self, sha: str) -> bool:
        """True for commits GitHub made (and signed)."""
        with self.lock:
            return sha in self.verified

    def add_conversion(self, code: str, registration: dict) -> None:
        """A one-time manifest code and the App registration exchanging it yields."""
        with self.lock:
            self.conversions[code] = registration

    def take_conversion(self, code: str) -> dict | None:
        """The registration for a manifest code, once (GitHub's codes are single use)."""
        with self.lock:
            return self.conversions.pop(code, None)

    def snapshot(self, name: str):
        """A deep copy of one of the state collections, for inspection."""
        with self.lock:
            return copy.deepcopy(getattr(self, name))

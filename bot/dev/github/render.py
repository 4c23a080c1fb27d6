"""Store records → JSON shaped like GitHub's REST and webhook objects (what githubkit's models require)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bot.dev.github import bare
from bot.dev.github.store import REACTIONS, Store

APP_PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"}
APP_EVENTS = ["issues", "issue_comment", "pull_request_review", "pull_request_review_comment"]
# GitHub's `permission` field knows only four levels; `role_name` keeps the finer one.
PERMISSION_LEVEL = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read",
                    "none": "none"}
REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors", "deployments_url": "/deployments", "downloads_url": "/downloads",
    "events_url": "/events", "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges", "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}


def timestamp(moment: datetime | None) -> str | None:
    """GitHub's timestamp format, e.g. 2024-05-01T12:00:00Z."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Renderer:
    """Builds GitHub-shaped JSON for one running stand-in (its base URL, app and repositories)."""

    def __init__(self, base_url: str, store: Store, repo_path: Callable[[str, str], Path], app: dict):
        self.base = base_url
        self.store = store
        self.repo_path = repo_path
        self.app_info = app  # {"id", "slug", "name", "owner"}

    def user(self, login: str) -> dict:
        """A SimpleUser."""
        user = self.store.user(login)
        api = f"{self.base}/users/{login}"
        return {
            "login": login, "id": user["id"], "node_id": f"U_{user['id']}", "avatar_url": f"{self.base}/avatars/{login}",
            "gravatar_id": "", "url": api, "html_url": f"{self.base}/{login}", "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events", "type": user["type"], "user_view_type": "public",
            "site_admin": False,
        }

    def repository(self, owner: str, name: str) -> dict:
        """A full repository object (fits Repository, FullRepository and webhook `repository`)."""
        repo = self.store.repo(owner, name)
        api = f"{self.base}/repos/{owner}/{name}"
        created = timestamp(repo["created_at"])
        body = {
            "id": repo["id"], "node_id": f"R_{repo['id']}", "name": name, "full_name": f"{owner}/{name}",
            "owner": self.user(owner), "private": repo["private"], "visibility": "private" if repo["private"] else "public",
            "html_url": f"{self.base}/{owner}/{name}", "description": None, "fork": False, "url": api,
            "git_url": f"{self.base}/{owner}/{name}.git", "ssh_url": f"git@127.0.0.1:{owner}/{name}.git",
            "clone_url": f"{self.base}/{owner}/{name}.git", "svn_url": f"{self.base}/{owner}/{name}",
            "mirror_url": None, "homepage": None, "language": "Python", "forks_count": 0, "forks": 0,
            "stargazers_count": 0, "watchers_count": 0, "watchers": 0, "subscribers_count": 1, "network_count": 0,
            "size": 1, "default_branch": repo["default_branch"], "open_issues_count": self._open_count(owner, name),
            "is_template": False, "topics": [], "has_issues": True, "has_projects": False, "has_wiki": False,
            "has_pages": False, "has_downloads": True, "has_discussions": False, "archived": repo["archived"], "disabled": False,
            "pushed_at": created, "created_at": created, "updated_at": created, "license": None,
            "allow_forking": True, "web_commit_signoff_required": False,
        }
        body["open_issues"] = body["open_issues_count"]
        body.update({key: api + suffix for key, suffix in REPO_URL_TEMPLATES.items()})
        return body

    def _open_count(self, owner: str, name: str) -> int:
        return sum(1 for record in self.store.issues_of(owner, name) if record["state"] == "open")

    def label(self, owner: str, name: str, label: str) -> dict:
        """A label object."""
        label_id = self.store.label_id(label)
        return {"id": label_id, "node_id": f"LA_{label_id}", "url": f"{self.base}/repos/{owner}/{name}/labels/{label}",
                "name": label, "description": None, "color": "ededed", "default": False, "archived_at": None,
                "archived_by": None}

    def author_association(self, owner: str, name: str, login: str) -> str:
        """OWNER, COLLABORATOR or NONE, from the user's role on the repository."""
        if login == owner:
            return "OWNER"
        return "NONE" if self.store.role(owner, name, login) == "none" else "COLLABORATOR"

    def reaction_rollup(self, url: str, reactions: list[dict]) -> dict:
        """The `reactions` summary embedded in issues and comments."""
        counts = {content: sum(1 for r in reactions if r["content"] == content) for content in REACTIONS}
        return {"url": url, "total_count": len(reactions), **counts}

    def issue(self, record: dict) -> dict:
        """An issue (a PR's issue side carries `pull_request`); fits Issue and the webhook issue objects."""
        owner, name, number = record["owner"], record["repo"], record["number"]
        api = f"{self.base}/repos/{owner}/{name}/issues/{number}"
        kind = "pull" if "pull" in record else "issues"
        body = {
            "id": record["id"], "node_id": f"I_{record['id']}", "url": api,
            "repository_url": f"{self.base}/repos/{owner}/{name}", "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments", "events_url": f"{api}/events", "timeline_url": f"{api}/timeline",
            "html_url": f"{self.base}/{owner}/{name}/{kind}/{number}", "number": number, "state": record["state"],
            "state_reason": "completed" if record["state"] == "closed" else None, "title": record["title"],
            "body": record["body"], "user": self.user(record["user"]),
            "labels": [self.label(owner, name, label) for label in record["labels"]],
            "assignee": self.user(record["assignees"][0]) if record["assignees"] else None,
            "assignees": [self.user(login) for login in record["assignees"]],
            "milestone": None, "locked": record["locked"], "active_lock_reason": None,
            "comments": len(self.store.comments_on(owner, name, number)),
            "created_at": timestamp(record["created_at"]), "updated_at": timestamp(record["updated_at"]),
            "closed_at": timestamp(record["closed_at"]), "closed_by": None,
            "author_association": self.author_association(owner, name, record["user"]),
            "performed_via_github_app": None,
            "reactions": self.reaction_rollup(f"{api}/reactions", self.store.reactions_to(owner, name, "issue", number)),
        }
        if "pull" in record:
            pulls = f"{self.base}/repos/{owner}/{name}/pulls/{number}"
            html = f"{self.base}/{owner}/{name}/pull/{number}"
            body["draft"] = record["pull"]["draft"]
            body["pull_request"] = {"url": pulls, "html_url": html, "diff_url": f"{html}.diff",
                                    "patch_url": f"{html}.patch", "merged_at": None}
        return body

    def comment(self, record: dict) -> dict:
        """An issue comment; fits IssueComment and the webhook comment object."""
        owner, name = record["owner"], record["repo"]
        api = f"{self.base}/repos/{owner}/{name}/issues/comments/{record['id']}"
        user = self.user(record["user"])
        by_app = user["type"] == "Bot" and record["user"] == f"{self.app_info['slug']}[bot]"
        return {
            "id": record["id"], "node_id": f"IC_{record['id']}", "url": api,
            "html_url": f"{self.base}/{owner}/{name}/issues/{record['number']}#issuecomment-{record['id']}",
            "issue_url": f"{self.base}/repos/{owner}/{name}/issues/{record['number']}", "body": record["body"],
            "user": user, "created_at": timestamp(record["created_at"]), "updated_at": timestamp(record["updated_at"]),
            "author_association": self.author_association(owner, name, record["user"]),
            "performed_via_github_app": self.app() if by_app else None,
            "reactions": self.reaction_rollup(f"{api}/reactions",
                                              self.store.reactions_to(owner, name, "comment", record["id"])),
        }

    def reaction(self, record: dict) -> dict:
        """A Reaction."""
        return {"id": record["id"], "node_id": f"REA_{record['id']}", "user": self.user(record["user"]),
                "content": record["content"], "created_at": timestamp(record["created_at"])}

    def pull(self, record: dict, *, simple: bool = False) -> dict:
        """A PullRequest (or, with `simple`, a PullRequestSimple as the list endpoint returns)."""
        owner, name, number, pull = record["owner"], record["repo"], record["number"], record["pull"]
        api = f"{self.base}/repos/{owner}/{name}/pulls/{number}"
        html = f"{self.base}/{owner}/{name}/pull/{number}"
        issue_api = f"{self.base}/repos/{owner}/{name}/issues/{number}"
        path = self.repo_path(owner, name)
        head_sha = bare.branch_sha(path, pull["head"]) or pull["head_sha"]
        base_sha = bare.branch_sha(path, pull["base"]) or ""
        repository = self.repository(owner, name)

        def side(ref: str, sha: str) -> dict:
            return {"label": f"{owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(owner), "repo": repository}

        body = {
            "url": api, "id": pull["id"], "node_id": f"PR_{pull['id']}", "html_url": html, "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch", "issue_url": issue_api, "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments", "review_comment_url": f"{self.base}/repos/{owner}/{name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments", "statuses_url": f"{self.base}/repos/{owner}/{name}/statuses/{head_sha}",
            "number": number, "state": record["state"], "locked": record["locked"], "title": record["title"],
            "user": self.user(record["user"]), "body": record["body"],
            "labels": [self.label(owner, name, label) for label in record["labels"]], "milestone": None,
            "active_lock_reason": None, "created_at": timestamp(record["created_at"]),
            "updated_at": timestamp(record["updated_at"]), "closed_at": timestamp(record["closed_at"]),
            "merged_at": None, "merge_commit_sha": None, "assignee": None, "assignees": [],
            "requested_reviewers": [], "requested_teams": [], "head": side(pull["head"], head_sha),
            "base": side(pull["base"], base_sha),
            "_links": {key: {"href": href} for key, href in {
                "self": api, "html": html, "issue": issue_api, "comments": f"{issue_api}/comments",
                "review_comments": f"{api}/comments",
                "review_comment": f"{self.base}/repos/{owner}/{name}/pulls/comments{{/number}}",
                "commits": f"{api}/commits", "statuses": f"{self.base}/repos/{owner}/{name}/statuses/{head_sha}",
            }.items()},
            "author_association": self.author_association(owner, name, record["user"]), "auto_merge": None,
            "draft": pull["draft"],
        }
        if simple:
            return body
        body.update({
            "merged": pull["merged"], "mergeable": None, "rebaseable": None, "mergeable_state": "unknown",
            "merged_by": None, "comments": len(self.store.comments_on(owner, name, number)),
            "review_comments": len(self.store.review_comments_on(owner, name, number)),
            "maintainer_can_modify": False, **bare.diff_stats(path, pull["base"], pull["head"]),
        })
        return body

    def review_comment(self, record: dict) -> dict:
        """A PullRequestReviewComment."""
        owner, name, number = record["owner"], record["repo"], record["number"]
        api = f"{self.base}/repos/{owner}/{name}/pulls/comments/{record['id']}"
        html = f"{self.base}/{owner}/{name}/pull/{number}#discussion_r{record['id']}"
        pull_api = f"{self.base}/repos/{owner}/{name}/pulls/{number}"
        line = record["line"]
        return {
            "url": api, "pull_request_review_id": record["review_id"], "id": record["id"],
            "node_id": f"PRRC_{record['id']}", "diff_hunk": f"@@ -{line or 1},1 +{line or 1},1 @@",
            "path": record["path"] or "", "position": line, "original_position": line,
            "commit_id": record["commit_id"], "original_commit_id": record["commit_id"],
            "user": self.user(record["user"]), "body": record["body"], "created_at": timestamp(record["created_at"]),
            "updated_at": timestamp(record["updated_at"]), "html_url": html, "pull_request_url": pull_api,
            "author_association": self.author_association(owner, name, record["user"]),
            "_links": {"self": {"href": api}, "html": {"href": html}, "pull_request": {"href": pull_api}},
            "line": line, "original_line": line, "side": "RIGHT" if line else None,
            "start_line": None, "original_start_line": None, "start_side": None,
            "subject_type": "line" if line else "file",
            "reactions": self.reaction_rollup(f"{api}/reactions", self.store.reactions_to(
                owner, name, "review_comment", record["id"])),
        }

    def app(self) -> dict:
        """The App itself (an Integration)."""
        info = self.app_info
        return {
            "id": info["id"], "slug": info["slug"], "node_id": f"A_{info['id']}", "client_id": f"Iv1.{info['id']:016x}",
            "owner": self.user(info["owner"]), "name": info["name"], "description": "Turns labelled issues into PRs",
            "external_url": self.base, "html_url": f"{self.base}/apps/{info['slug']}",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "permissions": APP_PERMISSIONS, "events": APP_EVENTS, "installations_count": len(self.store.installations),
        }

    def installation(self, record: dict) -> dict:
        """An Installation of the App on an account."""
        api = f"{self.base}/app/installations/{record['id']}"
        stamp = timestamp(record["created_at"])
        return {
            "id": record["id"], "account": self.user(record["account"]), "repository_selection": "all",
            "access_tokens_url": f"{api}/access_tokens", "repositories_url": f"{self.base}/installation/repositories",
            "html_url": f"{self.base}/settings/installations/{record['id']}", "app_id": self.app_info["id"],
            "app_slug": self.app_info["slug"], "target_id": self.store.user(record["account"])["id"],
            "target_type": "User", "permissions": APP_PERMISSIONS, "events": APP_EVENTS, "created_at": stamp,
            "updated_at": stamp, "single_file_name": None, "has_multiple_single_files": False,
            "single_file_paths": [], "suspended_by": None, "suspended_at": None,
        }

    def collaborator_permission(self, owner: str, name: str, login: str) -> dict:
        """A RepositoryCollaboratorPermission: `role_name` may be a custom role; `permission` is its base level."""
        role = self.store.role(owner, name, login)
        base = self.store.base_role(owner, role)
        level = PERMISSION_LEVEL[base]
        flags = {"admin": base == "admin", "maintain": base in ("admin", "maintain"),
                 "push": level in ("admin", "write"), "triage": level != "none" and base != "read",
                 "pull": level != "none"}
        return {"permission": level, "role_name": role,
                "user": {**self.user(login), "permissions": flags, "role_name": role}}

    def public_user(self, login: str) -> dict:
        """A PublicUser, as GET /users/{login} answers."""
        return {**self.user(login), "name": None, "company": None, "blog": "", "location": None, "email": None,
                "hireable": None, "bio": None, "twitter_username": None, "public_repos": 0, "public_gists": 0,
                "followers": 0, "following": 0, "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z"}

    def git_ref(self, owner: str, name: str, ref: str, sha: str) -> dict:
        """A GitRef (`ref` is the full name, refs/heads/...)."""
        api = f"{self.base}/repos/{owner}/{name}"
        return {"ref": ref, "node_id": f"REF_{sha[:12]}", "url": f"{api}/git/{ref}",
                "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"}}

    def git_tree(self, owner: str, name: str, sha: str, entries: list[dict]) -> dict:
        """A GitTree."""
        api = f"{self.base}/repos/{owner}/{name}/git"
        return {"sha": sha, "url": f"{api}/trees/{sha}", "truncated": False, "tree": [
            {"path": e["path"], "mode": e["mode"], "type": e["type"], "sha": e["sha"],
             "url": f"{api}/{'blobs' if e['type'] == 'blob' else 'trees'}/{e['sha']}"} for e in entries]}

    def git_commit(self, owner: str, name: str, commit: dict) -> dict:
        """A GitCommit: {sha, tree, parents, message, author, committer (name, email, date)}; verified when GitHub made it."""
        api = f"{self.base}/repos/{owner}/{name}/git"
        verified = self.store.is_verified(commit["sha"])
        return {
            "sha": commit["sha"], "node_id": f"C_{commit['sha'][:12]}", "url": f"{api}/commits/{commit['sha']}",
            "html_url": f"{self.base}/{owner}/{name}/commit/{commit['sha']}", "author": commit["author"],
            "committer": commit["committer"], "message": commit["message"],
            "tree": {"sha": commit["tree"], "url": f"{api}/trees/{commit['tree']}"},
            "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{self.base}/{owner}/{name}/commit/{p}"}
                        for p in commit["parents"]],
            "verification": {"verified": verified, "reason": "valid" if verified else "unsigned",
                             "signature": "-----BEGIN PGP SIGNATURE-----" if verified else None,
                             "payload": None, "verified_at": commit["committer"]["date"] if verified else None},
        }

    def simple_installation(self, installation_id: int) -> dict:
        """The `installation` object of webhook payloads."""
        return {"id": installation_id, "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}"}

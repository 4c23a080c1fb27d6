"""Getting a job's commits onto GitHub: a git push, else the same commits made through GitHub's API, else
an account of what GitHub refused with the change itself, so a run is never lost."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.app.ports import RepositoryClient
from bot.loop.untrusted import fence
from bot.outside.github import GitHubError
from bot.outside.workspace import Workspace, WorkspaceError
from bot.redact import redact

# Room for the patch in a status comment (GitHub's limit is 65,536 characters).
MAX_PATCH_CHARS = 50_000
MAX_REFUSAL_CHARS = 600


class Route(enum.Enum):
    """How the commits reached GitHub."""

    pushed = "pushed"
    api = "api"  # git push refused; made through the Git Data API (and signed by GitHub)
    refused = "refused"  # both refused: nothing reached GitHub


@dataclass(frozen=True)
class Published:
    """How publishing went, and GitHub's words when it refused something."""

    route: Route
    push_refusal: str = ""
    api_refusal: str = ""


def _short(text: str) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= MAX_REFUSAL_CHARS else "…" + text[-(MAX_REFUSAL_CHARS - 1):]


def publish(github: RepositoryClient, workspace: Workspace, url: str, branch: str, base: str, *, force: bool) -> Published:
    """Put HEAD's commits since `base` on `branch` of GitHub (force-moving it when `force`)."""
    try:
        workspace.push(url, github.token(), branch, force=force)
        return Published(Route.pushed)
    except WorkspaceError as refused:
        push_refusal = _short(str(refused))
    try:
        github.create_commits(branch, base, workspace.commits_since(base), force=force)
        return Published(Route.api, push_refusal)
    except GitHubError as exc:
        return Published(Route.refused, push_refusal, _short(str(exc)))


def refusal_report(published: Published, branch: str, patch: str, summary: str) -> str:
    """The status comment when GitHub took neither the push nor the API commits: what it said, and the change."""
    lines = [f"AgentCoder finished ({summary}) but GitHub refused its commits for branch `{branch}`.",
             "", f"- `git push`: {published.push_refusal}", f"- GitHub's API: {published.api_refusal}", ""]
    if len(patch) <= MAX_PATCH_CHARS:
        lines += ["The change is below, so the work is not lost (apply it with `git apply`).", "",
                  "<details><summary>The change</summary>", "", fence(patch, "diff"), "", "</details>"]
    else:
        lines.append(f"The change ({len(patch):,} characters) is too large to show here; ask again once the "
                     "refusal above is resolved.")
    return "\n".join(lines)

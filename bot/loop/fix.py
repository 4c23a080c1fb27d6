"""One fix, start to finish, on a working copy: refuse what cannot be fixed, run the loop, commit the result.

Shared by `agentcoder fix` (a local checkout) and the GitHub App's job (a fresh clone).
"""

from __future__ import annotations

import re

from bot.loop.agent_loop import AgentLoop
from bot.loop.agents import Issue
from bot.loop.outcome import Outcome
from bot.loop.revision import TestReview
from bot.loop.untrusted import one_line
from bot.outside.workspace import Workspace, slugify

BRANCH_PREFIX = "agentcoder/"
# `-2`, `-3`…: a fresh branch the App took when `issue-N` held someone else's commits.
_ISSUE_BRANCH = re.compile(r"^agentcoder/issue-(\d+)(?:-\d+)?$")


class NotFixable(Exception):
    """The request cannot be worked on at all (empty issue, not a Python repository); the message says why."""


def branch_for(issue: Issue) -> str:
    """`agentcoder/issue-12`, or `agentcoder/<slug of the title>` when there is no number."""
    if issue.number is not None:
        return issue_branch(issue.number)
    return f"{BRANCH_PREFIX}{slugify(issue.title)}"


def issue_branch(number: int) -> str:
    """The bot's branch for issue `number`."""
    return f"{BRANCH_PREFIX}issue-{number}"


def issue_of_branch(branch: str) -> int | None:
    """The issue number a bot branch was made for, or None for any other branch."""
    match = _ISSUE_BRANCH.match(branch)
    return int(match.group(1)) if match else None


def refuse_unfixable(workspace: Workspace, issue: Issue) -> None:
    """Raise NotFixable before any model is called when there is nothing sensible to do."""
    if issue.is_empty():
        raise NotFixable("the issue has no title and no text: there is nothing to fix")
    if not workspace.is_python_project():
        raise NotFixable("this repository has no Python code: AgentCoder fixes Python repositories only")


def run_fix(loop: AgentLoop, workspace: Workspace, issue: Issue, branch: str, guidance: str = "", *,
            base: str | None = None, review: TestReview = TestReview(), config_ref: str | None = None) -> Outcome:
    """Run the loop on `branch` of the working copy and commit whatever it leaves (the fix or the best attempt).

    `base` and `review` are for a retry on a branch that already holds an attempt (see `AgentLoop.run`);
    `config_ref` is the commit whose `.agentcoder.yml` counts (the App passes the default branch).
    """
    refuse_unfixable(workspace, issue)
    workspace.start_branch(branch)
    outcome = loop.run(workspace, issue, guidance, base=base, review=review, config_ref=config_ref)
    # The title is anyone's text: one line, and no `#123` that would close another issue when this commit is merged.
    title = re.sub(r"#(?=\d)", "#\u200b", one_line(issue.title)) or "the issue"
    verb = "Fix" if outcome.resolved else "Attempt to fix"
    reference = f" (#{issue.number})" if issue.number is not None else ""
    outcome.branch = branch
    outcome.commit = workspace.commit_all(f"{verb}: {title}{reference}\n\nAgentCoder: {outcome.stop_reason}.")
    return outcome

"""One fix, start to finish, on a working copy: refuse what cannot be fixed, run the loop, commit the result.

Shared by `agentcoder fix` (a local checkout) and the GitHub App's job (a fresh clone).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Issue, Programmer, TestDesigner
from bot.loop.outcome import Outcome
from bot.outside.model import ModelClient
from bot.outside.workspace import Workspace, slugify
from bot.sandbox.executor import Sandbox


class NotFixable(Exception):
    """The request cannot be worked on at all (empty issue, not a Python repository); the message says why."""


def branch_for(issue: Issue) -> str:
    """`agentcoder/issue-12`, or `agentcoder/<slug of the title>` when there is no number."""
    return f"agentcoder/issue-{issue.number}" if issue.number is not None else f"agentcoder/{slugify(issue.title)}"


def refuse_unfixable(workspace: Workspace, issue: Issue) -> None:
    """Raise NotFixable before any model is called when there is nothing sensible to do."""
    if issue.is_empty():
        raise NotFixable("the issue has no title and no text: there is nothing to fix")
    if not workspace.is_python_project():
        raise NotFixable("this repository has no Python code: AgentCoder fixes Python repositories only")


def build_loop(settings, sandbox: Sandbox, model: ModelClient, *, is_cancelled: Callable[[], bool] = lambda: False,
               progress: Callable[[str], None] = lambda _: None) -> AgentLoop:
    """The loop with its agents, budgets from the settings."""
    return AgentLoop(sandbox, Programmer(model), TestDesigner(model), LoopLimits.from_settings(settings),
                     is_cancelled=is_cancelled, progress=progress)


def run_fix(loop: AgentLoop, workspace: Workspace, issue: Issue, branch: str, guidance: str = "") -> Outcome:
    """Run the loop on `branch` of the working copy and commit whatever it leaves (the fix or the best attempt)."""
    refuse_unfixable(workspace, issue)
    workspace.start_branch(branch)
    outcome = loop.run(workspace, issue, guidance)
    title = issue.title or "the issue"
    verb = "Fix" if outcome.resolved else "Attempt to fix"
    reference = f" (#{issue.number})" if issue.number is not None else ""
    outcome.branch = branch
    outcome.commit = workspace.commit_all(f"{verb}: {title}{reference}\n\nAgentCoder: {outcome.stop_reason}.")
    return outcome

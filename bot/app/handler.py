"""The GitHub App's job: gatekeeping, then clone → loop → push → draft PR (or an account of why not).

Called by the worker pool, which is where exceptions are caught and recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.app.ports import GitHubAccess, RepositoryClient
from bot.app.queue import Job, JobResult
from bot.app.reports import cost_note, failure_report, pr_body
from bot.loop.agent_loop import AgentLoop
from bot.loop.agents import Issue
from bot.loop.fix import NotFixable, branch_for, issue_branch, issue_of_branch, run_fix
from bot.loop.outcome import Outcome, Step, StepEvent, Stop
from bot.outside.github import IssueInfo
from bot.outside.workspace import Workspace, temporary_directory
from bot.redact import describe_error

log = logging.getLogger(__name__)
LOCKED_REFUSAL = "This conversation is locked, so AgentCoder will not work on it."

# Stops that end a job without a report of the loop's work (the status comment already says why).
_NO_REPORT = (Stop.CANCELLED, Stop.CONFIG_ERROR)

LoopFactory = Callable[[Callable[[], bool], Callable[[StepEvent], None]], AgentLoop]
ProgressSink = Callable[[int, str], None]  # (job id, message): what the dashboard shows of a running job


class JobHandler:
    """Runs one queued job against GitHub; returns a one-line detail for the job list."""

    def __init__(self, app: GitHubAccess, bot_login: str, make_loop: LoopFactory,
                 record_progress: ProgressSink = lambda job_id, message: None):
        self.app = app
        self.bot_login = bot_login
        self.make_loop = make_loop
        self.record_progress = record_progress

    def __call__(self, job: Job, is_cancelled: Callable[[], bool]) -> JobResult:
        """Handle a label or retry trigger."""
        github = self.app.repo(job.repo, job.installation_id)
        target = github.issue(job.issue_number) if github.can_write(job.sender) else None
        refusal = self._gatekeep(github, job, target)
        if refusal:
            # GitHub refuses an App's comment on a locked conversation (403): say it in the job list only.
            if refusal != LOCKED_REFUSAL:
                github.comment(job.issue_number, refusal)
            return JobResult(f"refused: {refusal}")
        github.react(job.issue_number, "eyes")

        def note(message: str) -> None:
            self.record_progress(job.id, message)

        try:
            if job.trigger == "retry":
                return self._retry(github, job, is_cancelled, note)
            return self._label(github, job, target, is_cancelled, note)
        except Exception as exc:
            # The pool records the failure in the job list; the status comment must not stay "working" for ever.
            self._report_crash(github, job.issue_number, exc)
            raise

    # -- gatekeeping, before any model is called -------------------------------------------------

    def _gatekeep(self, github: RepositoryClient, job: Job, target: IssueInfo | None) -> str | None:
        """A polite refusal, or None when the job may run; `target` is None when the sender may not write."""
        if target is None:
            return (f"@{job.sender}, AgentCoder only acts for people with write access to this repository. "
                    "A maintainer can add the label (or comment `/agentcoder retry`) instead.")
        if target.locked:  # first: closed issues are often locked too, and a locked one takes no comment
            return LOCKED_REFUSAL
        if target.state != "open":
            return "This is closed, so AgentCoder will not work on it. Reopen it and ask again."
        if job.trigger == "label":
            if target.is_pull_request:
                return "AgentCoder works on issues; to run it again on its own pull request, comment `/agentcoder retry`."
            existing = github.open_pull_for_branch(issue_branch(job.issue_number))
            if existing:
                return (f"There is already an open AgentCoder pull request for this issue: #{existing.number}. "
                        "Comment `/agentcoder retry <guidance>` there to run it again.")
        return None

    # -- the two triggers ----------------------------------------------------------------------------

    def _label(self, github: RepositoryClient, job: Job, info: IssueInfo,
               is_cancelled: Callable[[], bool], note: Callable[[str], None]) -> JobResult:
        issue = Issue(info.title, info.body, info.number)
        branch = branch_for(issue)
        status = self._status(github, job.issue_number)
        status("AgentCoder is working on this issue: running the existing tests first.")
        url, default_branch = github.clone_url_and_default_branch()
        outcome = self._run(github, url, default_branch, issue, branch, "", status, is_cancelled, note)
        if outcome is None:
            return JobResult("refused: not fixable")
        if outcome.stop in _NO_REPORT:
            return _result(outcome.stop_reason, outcome)
        if not outcome.resolved:
            status(failure_report(outcome, branch if outcome.commit else None))
            return _result(f"not resolved: {outcome.stop_reason}", outcome)
        pull = github.create_draft_pull(issue.title, branch, default_branch, pr_body(outcome))
        status(f"AgentCoder opened draft pull request #{pull.number}: {outcome.stop_reason}{cost_note(outcome)}.")
        note(f"opened draft pull request #{pull.number}")
        return _result(f"opened PR #{pull.number}", outcome, pull.number)

    def _retry(self, github: RepositoryClient, job: Job, is_cancelled: Callable[[], bool],
               note: Callable[[str], None]) -> JobResult:
        pull = github.pull(job.issue_number)
        linked_number = issue_of_branch(pull.head_ref)
        linked = github.issue(linked_number if linked_number is not None else pull.number)
        issue = Issue(linked.title, linked.body, linked.number)
        guidance = job.guidance
        reviews = github.review_comments(pull.number)
        if reviews:
            guidance = (guidance + "\n\nReview comments on the pull request:\n" + "\n".join(f"- {r}" for r in reviews)).strip()
        status = self._status(github, pull.number)
        status("AgentCoder is running again on this branch" + (" with your guidance." if job.guidance else "."))
        url, _ = github.clone_url_and_default_branch()
        outcome = self._run(github, url, pull.head_ref, issue, pull.head_ref, guidance, status, is_cancelled, note)
        if outcome is None:
            return JobResult("refused: not fixable")
        if outcome.stop in _NO_REPORT:
            return _result(outcome.stop_reason, outcome, pull.number)
        github.update_pull_body(pull.number, pr_body(outcome))
        note(f"updated the description of pull request #{pull.number}")
        if outcome.resolved:
            status(f"AgentCoder pushed new commits: {outcome.stop_reason}{cost_note(outcome)}."
                   " The description holds the new log.")
            return _result(f"updated PR #{pull.number}", outcome, pull.number)
        status(failure_report(outcome, pull.head_ref if outcome.commit else None))
        return _result(f"not resolved: {outcome.stop_reason}", outcome, pull.number)

    # -- shared steps --------------------------------------------------------------------------------

    def _run(self, github: RepositoryClient, url: str, clone_branch: str, issue: Issue, branch: str, guidance: str,
             status: Callable[[str], None], is_cancelled: Callable[[], bool],
             note: Callable[[str], None]) -> Outcome | None:
        """Clone `clone_branch`, run the loop on `branch`, push what it committed; None when not fixable.

        A new branch is pushed with force (it is the bot's own); commits on an existing PR branch fast-forward.
        """
        def progress(event: StepEvent) -> None:
            note(event.text)
            if event.step in (Step.TEST_DESIGN, Step.PROGRAMMER):
                status(f"AgentCoder is working on this: {event.text}.")

        with temporary_directory("agentcoder-job-") as scratch:
            note(f"cloning {clone_branch}")
            workspace = Workspace.clone_remote(url, github.token(), scratch / "work", clone_branch)
            try:
                outcome = run_fix(self.make_loop(is_cancelled, progress), workspace, issue, branch, guidance)
            except NotFixable as exc:
                status(f"AgentCoder cannot work on this: {exc}.")
                return None
            if outcome.commit:
                note(f"pushing {branch}")
                workspace.push(url, github.token(), branch, force=branch != clone_branch)
        if outcome.stop is Stop.CANCELLED:
            status("This run was superseded by a newer request; the newer run reports here.")
        elif outcome.stop is Stop.CONFIG_ERROR:
            status(f"AgentCoder cannot use this repository's `.agentcoder.yml`: {outcome.stop_reason}."
                   " Fix that setting on the default branch and ask again.")
        return outcome

    def _report_crash(self, github: RepositoryClient, number: int, exc: Exception) -> None:
        try:
            github.set_status(number, f"AgentCoder stopped because of an error: {describe_error(exc)}", self.bot_login)
        except Exception as inner:  # GitHub itself is failing; the job list still has the first error
            log.error("could not report the error on #%s: %s", number, describe_error(inner))

    def _status(self, github: RepositoryClient, number: int) -> Callable[[str], None]:
        def update(text: str) -> None:
            github.set_status(number, text, self.bot_login)

        return update


def _result(detail: str, outcome: Outcome, pull_request: int | None = None) -> JobResult:
    """The job's result with its JSON iteration log (and the pull request it opened or updated)."""
    log_json = outcome.to_json()
    if pull_request is not None:
        log_json["pull_request"] = pull_request
    return JobResult(detail, outcome.stop.value, log_json)

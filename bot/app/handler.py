"""The GitHub App's job: gatekeeping, then clone → loop → publish → draft PR (or an account of why not).

Called by the worker pool, which is where exceptions are caught and recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.app.commands import RetryCommand, RetryKind, parse_retry
from bot.app.ports import GitHubAccess, RepositoryClient
from bot.app.publish import Route, publish, refusal_report
from bot.app.queue import Job, JobResult
from bot.app.reports import cost_note, failure_report, pr_body
from bot.loop.agent_loop import AgentLoop, test_file_for
from bot.loop.agents import Issue
from bot.loop.evidence import function_sources
from bot.loop.fix import NotFixable, branch_for, issue_branch, issue_of_branch, run_fix
from bot.loop.outcome import Outcome, Step, StepEvent, Stop
from bot.loop.revision import TestReview
from bot.outside.github import (
    BotIdentity,
    Failure,
    GitHubError,
    PullInfo,
    ReviewComment,
    retry_until_reachable,
)
from bot.outside.workspace import BOT_AUTHOR, Workspace, temporary_directory
from bot.redact import describe_error

log = logging.getLogger(__name__)
LOCKED_REFUSAL = "This conversation is locked, so AgentCoder will not work on it."
ARCHIVED_REFUSAL = "This repository is archived (read-only), so AgentCoder will not work on it."
# A label the author's own issue carried from birth came from an issue template, not from a request.
NEW_ISSUE_S = 600
REACH_GITHUB_MAX_WAIT_S = 1800

# Stops that end a job without a report of the loop's work (the status comment already says why).
_NO_REPORT = (Stop.CANCELLED, Stop.CONFIG_ERROR)

LoopFactory = Callable[[Callable[[], bool], Callable[[StepEvent], None]], AgentLoop]
ProgressSink = Callable[[int, str], None]  # (job id, message): what the dashboard shows of a running job


@dataclass(frozen=True)
class Refusal:
    """Why a job does not run; `public` when it is said on GitHub too (else only in the job list)."""

    text: str
    public: bool = True


@dataclass
class _Run:
    """What `_run` produced: the outcome, the branch it is on, and how it reached GitHub."""

    outcome: Outcome | None
    branch: str
    route: Route | None = None


class JobHandler:
    """Runs one queued job against GitHub; returns a one-line detail for the job list."""

    def __init__(self, app: GitHubAccess, make_loop: LoopFactory,
                 record_progress: ProgressSink = lambda job_id, message: None, *,
                 reach_github_max_wait_s: float = REACH_GITHUB_MAX_WAIT_S):
        self.app = app
        self.make_loop = make_loop
        self.record_progress = record_progress
        self.reach_github_max_wait_s = reach_github_max_wait_s

    def admit(self, job: Job) -> str | None:
        """Check a new trigger's sender before it may supersede anything: the refusal told to them, or None."""
        github = self.app.repo(job.repo, job.installation_id)
        # Deliveries are taken while GitHub cannot be reached: wait for it (backing off), as a job does.
        if retry_until_reachable(lambda: github.can_write(job.sender), is_cancelled=lambda: False,
                                 max_wait_s=self.reach_github_max_wait_s):
            return None
        refusal = self._gatekeep(github, job, None)  # a sender without write access is refused before `bot` is read
        if refusal.public:
            github.comment(job.issue_number, refusal.text)
        return refusal.text

    def __call__(self, job: Job, is_cancelled: Callable[[], bool]) -> JobResult:
        """Handle a label or retry trigger."""
        github = self.app.repo(job.repo, job.installation_id)
        # `serve` takes deliveries while GitHub cannot be reached: wait for it (backing off) before anything else.
        bot = retry_until_reachable(lambda: self.app.identity(job.installation_id), is_cancelled=is_cancelled,
                                    max_wait_s=self.reach_github_max_wait_s)
        try:
            refusal = self._gatekeep(github, job, bot)
            if refusal:
                if refusal.public:
                    github.comment(job.issue_number, refusal.text)
                return JobResult(f"refused: {refusal.text}")
            self._acknowledge(github, job)

            def note(message: str) -> None:
                self.record_progress(job.id, message)

            if job.trigger == "retry":
                return self._retry(github, job, bot, is_cancelled, note)
            return self._label(github, job, bot, is_cancelled, note)
        except Exception as exc:
            # The pool records the failure in the job list; the status comment must not stay "working" for ever.
            self._report_crash(github, job.issue_number, exc, bot)
            if isinstance(exc, GitHubError) and exc.failure is Failure.rate_limited:
                return JobResult(f"stopped: {describe_error(exc)}")
            raise

    # -- gatekeeping, before any model is called -------------------------------------------------

    def _gatekeep(self, github: RepositoryClient, job: Job, bot: BotIdentity) -> Refusal | None:
        """A refusal, or None when the job may run."""
        repo = github.repository()
        if repo.archived:  # GitHub takes no comment on an archived repository
            return Refusal(ARCHIVED_REFUSAL, public=False)
        target = github.issue(job.issue_number)
        if not github.can_write(job.sender):
            text = (f"@{job.sender}, AgentCoder only acts for people with write access to this repository. "
                    "A maintainer can add the label (or comment `/agentcoder retry`) instead.")
            if job.trigger == "label" and target.author == job.sender and time.time() - target.created_at < NEW_ISSUE_S:
                return Refusal(f"@{job.sender} has no write access; the label came with their own new issue "
                               "(an issue template)", public=False)
            return Refusal(text)
        if target.locked:  # first: closed issues are often locked too, and a locked one takes no comment
            return Refusal(LOCKED_REFUSAL, public=False)
        if target.state != "open":
            return Refusal("This is closed, so AgentCoder will not work on it. Reopen it and ask again.")
        if job.trigger == "retry":
            if target.author != bot.login:  # routed before the bot's login was known
                return Refusal("not a pull request of AgentCoder's", public=False)
            return None
        if target.is_pull_request:
            return Refusal("AgentCoder works on issues; to run it again on its own pull request, comment `/agentcoder retry`.")
        if github.branch_sha(repo.default_branch) is None:
            return Refusal("This repository is empty: there is no code for AgentCoder to work on yet.")
        linking = github.open_pulls_linking(job.issue_number)
        existing = next((pull for pull in linking if pull.author == bot.login), None) or github.open_pull_for_branch(
            issue_branch(job.issue_number))
        if existing:
            return Refusal(f"There is already an open AgentCoder pull request for this issue: #{existing.number}. "
                           "Comment `/agentcoder retry <guidance>` there to run it again.")
        competing = [pull for pull in linking if pull.author != bot.login]
        if competing:
            named = ", ".join(f"#{pull.number} by @{pull.author}" for pull in competing)
            return Refusal(f"An open pull request already links this issue ({named}), so AgentCoder will not open "
                           "a second one. Close it or remove the link, then ask again.")
        return None

    def _acknowledge(self, github: RepositoryClient, job: Job) -> None:
        """👀 on what asked: the comment (issue or review comment), else the issue or PR itself."""
        if job.comment_id and job.comment_kind in ("issue_comment", "review_comment"):
            github.react_to_comment(job.comment_id, "eyes", review_comment=job.comment_kind == "review_comment")
        else:  # a label, or a review (GitHub has no reactions on reviews)
            github.react(job.issue_number, "eyes")

    # -- the two triggers ----------------------------------------------------------------------------

    def _label(self, github: RepositoryClient, job: Job, bot: BotIdentity, is_cancelled: Callable[[], bool],
               note: Callable[[str], None]) -> JobResult:
        info = github.issue(job.issue_number)
        issue = Issue(info.title, info.body, info.number)
        status = self._status(github, job.issue_number, bot)
        others = [login for login in info.assignees if login != bot.login]
        assigned = (f" (assigned to {', '.join('@' + login for login in others)}: they may be working on it too)"
                    if others else "")
        status(_restarted(job) + f"AgentCoder is working on this issue{assigned}: running the existing tests first.")
        repo = github.repository()
        run = self._run(github, repo.clone_url, repo.default_branch, issue, branch_for(issue), "", status,
                        is_cancelled, bot, note, new_branch=True,
                        default_branch=repo.default_branch)
        outcome = run.outcome
        if outcome is None:
            return JobResult("refused: not fixable")
        if outcome.stop in _NO_REPORT or run.route is Route.refused:
            return _result(_detail(outcome, run), outcome)
        if not outcome.resolved:
            status(failure_report(outcome, run.branch if outcome.commit else None))
            return _result(f"not resolved: {outcome.stop_reason}", outcome)
        pull = github.create_pull(issue.title, run.branch, repo.default_branch, pr_body(outcome))
        status(_opened(pull, outcome))
        note(f"opened {'draft ' if pull.draft else ''}pull request #{pull.number}")
        return _result(f"opened PR #{pull.number}" + _via(run), outcome, pull.number)

    def _retry(self, github: RepositoryClient, job: Job, bot: BotIdentity, is_cancelled: Callable[[], bool],
               note: Callable[[str], None]) -> JobResult:
        command = parse_retry(job.guidance)
        status = self._status(github, job.issue_number, bot)
        if command.problem:
            status(f"AgentCoder did not run: {command.problem}.")
            return JobResult(f"refused: {command.problem}")
        pull = github.pull(job.issue_number)
        linked_number = issue_of_branch(pull.head_ref)
        linked = github.issue(linked_number if linked_number is not None else pull.number)
        issue = Issue(linked.title, linked.body, linked.number)
        test_file = test_file_for(issue)
        comments = self._trusted_review_comments(github, pull.number)
        status(_restarted(job) + _starting(command))
        repo = github.repository()

        def prepare(workspace: Workspace) -> dict:
            # The unchanged code: where the bot's branch left the default branch (its PRs go there).
            base = workspace.merge_base(f"refs/remotes/origin/{repo.default_branch}")
            if command.kind is RetryKind.DROP:
                _check_drop(workspace.read(test_file), test_file, command.names)
            # A comment on a file that changed after it was written was answered by that change (GitHub
            # shows it as outdated); the others are still open.
            open_comments = [c for c in comments if not workspace.touched_since(c.commit, c.path)]
            # Words about the generated tests go to the test designer only; the programmer gets the rest.
            feedback = [_review_text(c) for c in open_comments if c.path == test_file]
            if command.tests_feedback:
                feedback.append(command.tests_feedback)
            guidance = command.guidance
            if on_code := [c for c in open_comments if c.path != test_file]:
                guidance = (guidance + "\n\nReview comments on the pull request:\n"
                            + "\n".join(f"- {comment}" for comment in on_code)).strip()
            return {"guidance": guidance, "base": base, "review": TestReview(tuple(feedback), command.names)}

        run = self._run(github, repo.clone_url, pull.head_ref, issue, pull.head_ref, "", status, is_cancelled, bot,
                        note, new_branch=False, default_branch=repo.default_branch, prepare=prepare)
        outcome = run.outcome
        if outcome is None:
            return JobResult("refused: not fixable")
        if outcome.stop in _NO_REPORT or run.route is Route.refused:
            return _result(_detail(outcome, run), outcome, pull.number)
        github.update_pull_body(pull.number, pr_body(outcome))
        note(f"updated the description of pull request #{pull.number}")
        if outcome.resolved:
            status(f"AgentCoder {_what_changed_in_tests(outcome)}pushed new commits: {outcome.stop_reason}"
                   f"{cost_note(outcome)}. The description holds the new log.")
            return _result(f"updated PR #{pull.number}" + _via(run), outcome, pull.number)
        status(failure_report(outcome, pull.head_ref if outcome.commit else None))
        return _result(f"not resolved: {outcome.stop_reason}", outcome, pull.number)

    # -- shared steps --------------------------------------------------------------------------------

    def _run(self, github: RepositoryClient, url: str, clone_branch: str, issue: Issue, branch: str, guidance: str,
             status: Callable[[str], None], is_cancelled: Callable[[], bool], bot: BotIdentity,
             note: Callable[[str], None], *, new_branch: bool, default_branch: str,
             prepare: Callable[[Workspace], dict] = lambda _: {}) -> _Run:
        """Clone `clone_branch`, run the loop on `branch`, publish what it committed.

        A new branch is the bot's own and is moved with force, unless someone else added commits to it (or a
        closed PR has it as head): then a fresh name is taken. Commits on an existing PR branch fast-forward.
        `prepare` looks at the clone before the loop runs: it gives the loop's options, or raises NotFixable.
        `.agentcoder.yml` is the maintainer's: it is read from the default branch, never from the PR branch.
        """
        def progress(event: StepEvent) -> None:
            note(event.text)
            if event.step in (Step.TEST_DESIGN, Step.PROGRAMMER):
                status(f"AgentCoder is working on this: {event.text}.")

        with temporary_directory("agentcoder-job-") as scratch:
            note(f"cloning {clone_branch}")
            workspace = Workspace.clone_remote(url, github.token(), scratch / "work", clone_branch,
                                               author=(bot.name, bot.email))
            base = workspace.head()
            if new_branch:
                branch = self._free_branch(github, workspace, url, branch, base, bot)
            try:
                options = {"guidance": guidance, "config_ref": f"refs/remotes/origin/{default_branch}",
                           **prepare(workspace)}
                outcome = run_fix(self.make_loop(is_cancelled, progress), workspace, issue, branch, **options)
            except NotFixable as exc:
                status(f"AgentCoder cannot work on this: {exc}.")
                return _Run(None, branch)
            route = None
            if outcome.commit:
                note(f"pushing {branch}")
                published = publish(github, workspace, url, branch, base, force=new_branch)
                route = published.route
                if route is Route.refused:
                    status(refusal_report(published, branch, workspace.patch_since(base), outcome.stop_reason))
        if outcome.stop is Stop.CANCELLED:
            status("This run was superseded by a newer request; the newer run reports here.")
        elif outcome.stop is Stop.CONFIG_ERROR:
            status(f"AgentCoder cannot use this repository's `.agentcoder.yml`: {outcome.stop_reason}."
                   " Fix that setting on the default branch and ask again.")
        return _Run(outcome, branch, route)

    def _free_branch(self, github: RepositoryClient, workspace: Workspace, url: str, branch: str, base: str,
                     bot: BotIdentity) -> str:
        """`branch`, unless it holds commits the bot did not make or heads a closed PR: then `branch-2`, `-3`…"""
        ours = {bot.email, BOT_AUTHOR.email}
        candidate, n = branch, 1
        while True:
            authors = workspace.remote_branch_authors(url, github.token(), candidate, base)
            if authors is None or (authors <= ours and not github.pulls_for_branch(candidate, state="closed")):
                return candidate
            n += 1
            candidate = f"{branch}-{n}"

    def _trusted_review_comments(self, github: RepositoryClient, number: int) -> list[ReviewComment]:
        """Review comments from people with write access; the others' never reach an agent."""
        allowed: dict[str, bool] = {}
        out = []
        for comment in github.review_comments(number):
            if comment.author not in allowed:
                allowed[comment.author] = bool(comment.author) and github.can_write(comment.author)
            if allowed[comment.author]:
                out.append(comment)
        return out

    def _report_crash(self, github: RepositoryClient, number: int, exc: Exception, bot: BotIdentity) -> None:
        try:
            github.set_status(number, f"AgentCoder stopped because of an error: {describe_error(exc)}", bot.login)
        except Exception as inner:  # GitHub itself is failing; the job list still has the first error
            log.error("could not report the error on #%s: %s", number, describe_error(inner))

    def _status(self, github: RepositoryClient, number: int, bot: BotIdentity) -> Callable[[str], None]:
        def update(text: str) -> None:
            github.set_status(number, text, bot.login)

        return update


def _opened(pull: PullInfo, outcome: Outcome) -> str:
    if pull.draft:
        return f"AgentCoder opened draft pull request #{pull.number}: {outcome.stop_reason}{cost_note(outcome)}."
    return (f"AgentCoder opened pull request #{pull.number} (work in progress: this repository does not accept "
            f"drafts): {outcome.stop_reason}{cost_note(outcome)}.")


def _result(detail: str, outcome: Outcome, pull_request: int | None = None) -> JobResult:
    """The job's result with its JSON iteration log (and the pull request it opened or updated)."""
    log_json = outcome.to_json()
    if pull_request is not None:
        log_json["pull_request"] = pull_request
    return JobResult(detail, outcome.stop.value, log_json)


def _via(run: _Run) -> str:
    return " (commits made through GitHub's API: the push was refused)" if run.route is Route.api else ""


def _detail(outcome: Outcome, run: _Run) -> str:
    if run.route is Route.refused:
        return f"not published: GitHub refused the commits for {run.branch} ({outcome.stop_reason})"
    return outcome.stop_reason


def _starting(command: RetryCommand) -> str:
    if command.kind is RetryKind.DROP:
        names = ", ".join(f"`{name}`" for name in command.names)
        return f"AgentCoder is dropping {names} from the generated tests and running again on this branch."
    if command.kind is RetryKind.TESTS:
        return "AgentCoder is revising the generated tests as you asked, then running again on this branch."
    return "AgentCoder is running again on this branch" + (" with your guidance." if command.text else ".")


def _check_drop(module: str | None, test_file: str, names: tuple[str, ...]) -> None:
    """Raise NotFixable (a one-line answer) unless every name is a generated test and some would remain."""
    present = list(function_sources(module)) if module else []
    if not present:
        raise NotFixable(f"this branch has no generated tests in `{test_file}` to drop")
    missing = [name for name in names if name not in present]
    if missing:
        raise NotFixable(f"there is no generated test named `{missing[0]}` in `{test_file}`"
                         f" (it has: {', '.join(present[:20])})")
    if set(present) <= set(names):
        raise NotFixable("that would drop every generated test; say what is wrong with them with"
                         " `/agentcoder retry tests: ...` instead")


def _review_text(comment: ReviewComment) -> str:
    where = f"line {comment.line} of the test module" if comment.line else "the test module"
    return f"@{comment.author} on {where}:\n{comment.body}"


def _what_changed_in_tests(outcome: Outcome) -> str:
    parts = []
    for revision in outcome.test_revisions:
        if revision.removed and not revision.attempts:
            parts.append("dropped " + ", ".join(f"`{name}`" for name in revision.removed))
        elif revision.accepted:
            names = revision.changed + revision.added
            parts.append("revised the generated tests" + (f" ({', '.join(f'`{n}`' for n in names)})" if names else ""))
        else:
            parts.append("kept the generated tests (the revision could not be used)")
    return (", ".join(parts) + ", then ") if parts else ""


def _restarted(job: Job) -> str:
    """The status comment's opening when the job's previous worker died (or shut down) while running it."""
    if not job.restarts:
        return ""
    return ("AgentCoder restarted this job: the worker running it stopped"
            + (f" ({job.restarts} times). " if job.restarts > 1 else ". "))

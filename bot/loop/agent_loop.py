"""THE loop: the three agents of the AgentCoder paper, applied to a whole repository.

    baseline: the suite on the unchanged code (what already fails is never blamed on the change)
    test designer → new tests → validated on the unchanged code (fail-to-pass or regression)
    up to N times: programmer edits → executor runs suite + new tests → real failures fed back

Read `run` top to bottom; each step below it is one box of the paper's figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.loop.agents import Issue, Programmer, TestDesigner
from bot.loop.applying import apply_answer, capped, edit_refusal
from bot.loop.context import (
    Focus,
    SourceFile,
    build_context,
    is_source_path,
)
from bot.loop.designer_context import designer_context
from bot.loop.designing import TestDesignSteps
from bot.loop.guard import EditBounds
from bot.loop.judging import JudgingSteps
from bot.loop.localize import Localizer
from bot.loop.outcome import (
    Iteration,
    Outcome,
    Prices,
    Step,
    StepEvent,
    Stop,
    Usage,
)
from bot.loop.ports import Clock, TestRunner
from bot.loop.reads import answer_reads
from bot.loop.revision import TestReview
from bot.loop.untrusted import describe_removed, hidden_parts
from bot.loop.watch import watched_lines
from bot.outside.model import CHARS_PER_TOKEN, LLMError, Role
from bot.outside.workspace import Workspace, WorkspaceError, slugify
from bot.repo_config import (
    RepoConfig,
    RepoConfigError,
    load_repo_config,
    parse_repo_config,
)
from bot.sandbox.results import RunProblem, RunResult, SetupFailed


class Cancelled(Exception):
    """The job was superseded or stopped while the loop ran."""


@dataclass(frozen=True)
class LoopLimits:
    """The loop's budgets."""

    max_iterations: int = 5
    max_test_design_attempts: int = 3
    token_budget: int = 400_000
    wall_time_budget_s: float = 1800.0
    context_token_budget: int = 12_000
    cost_budget_usd: float | None = None  # None: no dollar budget
    localize: bool = True  # the programmer's model localizes first (when the code does not all fit)
    max_read_turns: int = 6  # answers that only READ, per job; they use up no iteration
    edits: EditBounds = EditBounds()

    @classmethod
    def from_settings(cls, settings) -> LoopLimits:
        """The budgets configured in the settings."""
        return cls(settings.max_iterations, settings.max_test_design_attempts, settings.token_budget,
                   settings.wall_time_budget_s, settings.context_token_budget, settings.cost_budget_usd,
                   localize=settings.localize, max_read_turns=settings.max_read_turns)

    @property
    def context_chars(self) -> int:
        """The context budget in characters."""
        return self.context_token_budget * CHARS_PER_TOKEN


def test_file_for(issue: Issue) -> str:
    """Where the generated tests live: by issue number, else by a slug of the title."""
    if issue.number is not None:
        return f"tests/agentcoder/test_issue_{issue.number}.py"
    return f"tests/agentcoder/test_{slugify(issue.title, 40).replace('-', '_')}.py"


class AgentLoop(TestDesignSteps, JudgingSteps):
    """Runs the programmer, the test designer and the executor until the issue is fixed or a budget runs out."""

    def __init__(self, sandbox: TestRunner, programmer: Programmer, designer: TestDesigner, limits: LoopLimits = LoopLimits(),
                 *, is_cancelled: Callable[[], bool] = lambda: False, progress: Callable[[StepEvent], None] = lambda _: None,
                 clock: Clock = time.monotonic, prices: Prices | None = None,
                 localizer: Localizer | None = None):
        self.sandbox = sandbox
        self.programmer = programmer
        self.designer = designer
        self.localizer = localizer if localizer is not None else Localizer(programmer.model)
        self.limits = limits
        self.is_cancelled = is_cancelled
        self.progress = progress
        self.clock = clock
        self.prices = dict(prices or {})
        self._started = 0.0

    def run(self, workspace: Workspace, issue: Issue, guidance: str = "", *, base: str | None = None,
            review: TestReview = TestReview(), config_ref: str | None = None) -> Outcome:
        """The whole loop on a working copy; leaves the best attempt (and the new tests) in it.

        `base`: the unchanged code when the working copy already holds an earlier attempt (a retry on the
        PR branch); the baseline, the designer's view and the tests' validation come from there, and the
        generated tests already on the branch are kept, revised by the test designer when `review` asks.
        `config_ref` names the commit `.agentcoder.yml` is read from (the default branch, for a retry too);
        without it the file is read from the working copy.
        """
        started = self._started = self.clock()
        issue = issue.trimmed()
        outcome = Outcome(issue_title=issue.title, issue_number=issue.number, test_file=test_file_for(issue))
        for source, text in (("issue", f"{issue.title}\n{issue.body}"), ("guidance", guidance)):
            found = hidden_parts(text)
            if found:
                outcome.hidden_text_removed.append(f"{source}: {describe_removed(found)}")
        try:
            config = self._config(workspace, config_ref)
            start = workspace.head()
            query = f"{issue.title}\n{issue.body}"
            existing = workspace.read(outcome.test_file) if base else None
            with self._unchanged(workspace, base) as unchanged:
                outcome.baseline = self._baseline(unchanged, config, outcome)
                # The designer's view is read from the unchanged code, never from the branch's earlier attempt.
                sources = unchanged.source_files()
                focus = self._localize(issue, sources, outcome)
                view = designer_context(sources, query, self.limits.context_chars, focus, title=issue.title)
                if existing is not None:
                    self._review_tests(unchanged, issue, config, existing, review, outcome, view)
                else:
                    self._design_tests(unchanged, issue, config, outcome, view)
            self._note_reproduction(outcome)
            if existing is not None:
                # The tests run beside the suite (as on the first run), not twice in their old version.
                workspace.delete(outcome.test_file)
                sources = workspace.source_files()  # the programmer works on the branch as it is
            context = build_context(sources, f"{query}\n{guidance}", self.limits.context_chars, focus,
                                    title=issue.title)
            passes, failing_now = self._judge_branch(workspace, config, outcome) if review.requested else (False, "")
            if passes and not guidance.strip():
                # Only the tests changed, and the branch already passes them: nothing for the programmer to do.
                outcome.stopped(Stop.RESOLVED, "the change on this branch already passes the revised tests")
            else:
                self._iterate(workspace, issue, guidance, config, start, outcome, context, failing_now)
            outcome.files_changed = workspace.changed_files(base or start)
            outcome.look_here = self._look_here(workspace, base or start, outcome)
        except RepoConfigError as exc:
            outcome.stopped(Stop.CONFIG_ERROR, str(exc))
        except SetupFailed as exc:
            outcome.stopped(Stop.SETUP_FAILED, "installing the repository in the sandbox did not work")
            outcome.notes.append("setup log (tail):\n" + exc.log_tail[-2000:])
        except Cancelled:
            outcome.stopped(Stop.CANCELLED, "a newer request for this issue superseded this run")
        except LLMError as exc:
            outcome.stopped(Stop.MODEL_ERROR, f"model error: {exc}")
        finally:
            outcome.wall_s = round(self.clock() - started, 3)
        return outcome

    @contextmanager
    def _unchanged(self, workspace: Workspace, base: str | None) -> Iterator[Workspace]:
        """The unchanged code: the working copy itself, or a separate checkout of `base`."""
        if base is None or base == workspace.head():
            yield workspace
        else:
            with workspace.checkout_of(base) as unchanged:
                yield unchanged

    @staticmethod
    def _config(workspace: Workspace, ref: str | None) -> RepoConfig:
        if ref is None:
            return load_repo_config(workspace.path)
        try:
            text = workspace.committed_text(ref, ".agentcoder.yml", 64 * 1024)
        except WorkspaceError as exc:
            raise RepoConfigError(str(exc)) from None
        return RepoConfig() if text is None else parse_repo_config(text)

    @staticmethod
    def _look_here(workspace: Workspace, since: str, outcome: Outcome) -> list[str]:
        """The change's lines that run at import or exit or reach into pytest, for the maintainer to look at."""
        source = [path for path in outcome.files_changed if path != outcome.test_file]
        return [f"{line.path}:{line.line}: {line.what}: {line.text}"
                for line in watched_lines(workspace.diff(since, source))]

    # -- the boxes of the figure ------------------------------------------------------------

    def _localize(self, issue: Issue, sources: list[SourceFile], outcome: Outcome) -> Focus | None:
        """The programmer's model names files, then classes and functions (Agentless); None: use the ranking.

        Skipped when every module fits whole in the context anyway. Its tokens count under the programmer.
        """
        code = sum(len(source.text) for source in sources if is_source_path(source.path))
        if not self.limits.localize or code <= self.limits.context_chars * 3 // 4 or not self._check_budgets(outcome):
            return None
        self.progress(StepEvent(Step.PROGRAMMER, "programmer: localizing the issue (files, then classes and functions)"))
        query = f"{issue.title}\n{issue.body}"
        repo_map = build_context(sources, query, self.limits.context_chars, title=issue.title).repo_map
        found = self.localizer.localize(issue.title, issue.body, sources, repo_map, self.limits.context_chars)
        for reply in found.replies:
            self._count(outcome, Role.PROGRAMMER, reply)
        if found.problem:
            outcome.notes.append(f"localization: {found.problem}; the relevance ranking chose the code instead")
            return None
        outcome.localized = [f"{path}:{name}" for path, names in found.focus.symbols for name in names] or list(
            found.focus.files)
        return found.focus

    def _iterate(self, workspace: Workspace, issue: Issue, guidance: str, config: RepoConfig, start: str,
                 outcome: Outcome, context, failing_now: str = "") -> None:
        """Programmer → edits → executor → feedback, until the new tests pass with no regressions.

        `failing_now`: how the (revised) tests fail on the code already on the branch, for the first turn.
        """
        self.programmer.start(issue, context, outcome.test_file, guidance, config.instructions, config.protected_paths,
                              failing_now)
        read_turns = self.limits.max_read_turns
        refuse = edit_refusal(workspace, config, outcome.test_file, self.limits.edits.max_new_files)
        feedback: str | None = None
        best: tuple[int, dict[str, str | None]] | None = None
        new_runs: dict[int, RunResult | None] = {}
        for number in range(1, self.limits.max_iterations + 1):
            if not self._check_budgets(outcome):
                break
            began, model_before, test_before = self.clock(), outcome.model_s, outcome.test_s
            self.progress(StepEvent(Step.PROGRAMMER, f"iteration {number}: programmer", number))
            proposal = self.programmer.propose(feedback)
            usage = self._count(outcome, Role.PROGRAMMER, proposal.reply)
            reads: list[str] = []
            # An answer that only asks to READ gets the code at once: it uses up no iteration.
            while proposal.reads and not proposal.parsed.blocks and read_turns > 0 and self._check_budgets(outcome):
                read_turns -= 1
                reads += [str(request) for request in proposal.reads]
                self.progress(StepEvent(Step.PROGRAMMER, f"iteration {number}: programmer reads"
                                                        f" {', '.join(map(str, proposal.reads[:5]))}", number))
                proposal = self.programmer.propose(self._answer_reads(workspace, proposal.reads))
                usage.merge(self._count(outcome, Role.PROGRAMMER, proposal.reply))
            problems = capped(proposal.parsed.problems + apply_answer(proposal.parsed.blocks, workspace, refuse,
                                                                      self.limits.edits))
            if proposal.reads and not proposal.parsed.blocks and read_turns <= 0:
                problems.append(f"You have used all {self.limits.max_read_turns} answers that only READ; answer with"
                                " SEARCH/REPLACE blocks against the code you have been shown.")
            elif not proposal.parsed.blocks and not problems:
                problems.append("Your answer held no SEARCH/REPLACE blocks, so nothing changed. Answer with edits.")
            if proposal.reply.truncated:
                problems.append("Your answer was cut off at the model's length limit; send fewer, smaller blocks.")
            self.progress(StepEvent(Step.TESTS, f"iteration {number}: running the tests", number))
            suite, new_tests, regressions, failures, new_run = self._judge(workspace, config, outcome)
            new_runs[number] = new_run
            changed = [path for path in workspace.changed_files(start) if path != outcome.test_file]
            feedback = self._feedback(number, workspace, problems, failures, outcome, changed)
            if proposal.reads and proposal.parsed.blocks:
                reads += [str(request) for request in proposal.reads]
                feedback += "\n\n" + self._answer_reads(workspace, proposal.reads)
            broken = 1 if suite.problem is RunProblem.SETUP_FAILED or not changed else 0
            score = len(regressions) + len(new_tests.failing) + broken
            if changed and (best is None or score < best[0]):
                best = (score, {path: workspace.read(path) for path in changed})
                outcome.best_iteration = number
            # A repository with no tests of its own is judged by the new tests alone.
            suite_ok = not suite.problem or (suite.problem is RunProblem.NO_TESTS and new_tests.passed > 0)
            resolved = bool(changed) and not regressions and not new_tests.failing and suite_ok
            outcome.iterations.append(Iteration(
                number, proposal.plan, changed, problems, suite, new_tests, regressions,
                "" if resolved else feedback, {Role.PROGRAMMER: usage}, round(self.clock() - began, 3),
                round(outcome.model_s - model_before, 3), round(outcome.test_s - test_before, 3), reads,
            ))
            if resolved:
                outcome.stopped(Stop.RESOLVED, f"resolved in iteration {number}")
                outcome.best_iteration = number
                break
        else:
            outcome.stopped(Stop.NOT_RESOLVED, f"not resolved after {self.limits.max_iterations} iterations")
        if not outcome.resolved and best is not None:
            workspace.restore(start, best[1])
        self._finish(workspace, outcome, new_runs.get(outcome.best_iteration) if outcome.best_iteration else None)

    # -- steps ----------------------------------------------------------------------------------

    def _answer_reads(self, workspace: Workspace, requests) -> str:
        return answer_reads(requests, workspace.read_for_agent, self.limits.context_chars // 2)

    def _check_budgets(self, outcome: Outcome) -> bool:
        """Raise on cancellation; False (with the stop reason set) when a budget is spent."""
        if self.is_cancelled():
            raise Cancelled()
        if outcome.total_tokens >= self.limits.token_budget:
            outcome.stopped(Stop.BUDGET, f"token budget spent ({outcome.total_tokens} of {self.limits.token_budget})")
            return False
        cost, dollars = outcome.cost_usd, self.limits.cost_budget_usd
        if dollars is not None and cost is not None and cost >= dollars:
            outcome.stopped(Stop.BUDGET, f"cost budget spent (${cost:.4f} of ${dollars:.4f})")
            return False
        if self.clock() - self._started > self.limits.wall_time_budget_s:
            outcome.stopped(Stop.BUDGET, f"wall-time budget spent ({self.limits.wall_time_budget_s:.0f} s)")
            return False
        return True

    def _count(self, outcome: Outcome, agent: str, reply) -> Usage:
        usage = Usage()
        usage.add(reply, self.prices)
        outcome.tokens[agent].merge(usage)
        outcome.model_s += reply.seconds
        return usage

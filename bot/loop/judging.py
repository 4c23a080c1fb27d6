"""The executor's box of the paper's figure, as steps of the loop: the suite and the new tests run in the sandbox,
judged against the baseline (what already failed is never blamed on the change), and the real failures turned into
the programmer's next prompt.
"""

from __future__ import annotations

from bot.loop.designing import FAILURE_CHARS
from bot.loop.edits import describe_problems
from bot.loop.evidence import result_of
from bot.loop.outcome import Outcome, Step, StepEvent, TestSummary
from bot.loop.prompting import render
from bot.outside.model import CHARS_PER_TOKEN
from bot.outside.workspace import Workspace, WorkspaceError
from bot.repo_config import RepoConfig
from bot.sandbox.results import RunProblem, RunResult, SetupFailed
from bot.sandbox.summary import format_counts

FEEDBACK_CHARS = 10_000


class JudgingSteps:
    """The loop's test runs and their verdicts; AgentLoop supplies the sandbox, the limits and the progress."""

    def _baseline(self, workspace: Workspace, config: RepoConfig, outcome: Outcome) -> TestSummary:
        self.progress(StepEvent(Step.BASELINE, "running the existing tests on the unchanged code"))
        run = self._run_suite(workspace, config, outcome)
        baseline = TestSummary.of(run)
        if baseline.failing:
            outcome.notes.append(f"{len(baseline.failing)} test(s) already fail on the unchanged code and are not"
                                 f" blamed on the change: {', '.join(baseline.failing[:20])}")
        return baseline

    def _judge_branch(self, workspace: Workspace, config: RepoConfig, outcome: Outcome) -> tuple[bool, str]:
        """The branch as it is, against the (revised) tests: whether all pass (then the tests are written), and
        otherwise the failures."""
        if outcome.test_code is None or not self._check_budgets(outcome):
            return False, ""
        self.progress(StepEvent(Step.TESTS, "running the revised tests on the change already on this branch"))
        suite, new_tests, regressions, failures, new_run = self._judge(workspace, config, outcome)
        suite_ok = not suite.problem or (suite.problem is RunProblem.NO_TESTS and new_tests.passed > 0)
        if not suite_ok or regressions or new_tests.failing:
            text = "\n\n".join(failures)
            return False, text if len(text) <= FEEDBACK_CHARS else text[:FEEDBACK_CHARS] + "\n...[more failures trimmed]"
        self._finish(workspace, outcome, new_run)
        return True, ""

    @staticmethod
    def _finish(workspace: Workspace, outcome: Outcome, final_run: RunResult | None) -> None:
        """Leave the generated tests in the working copy, with each test's result on the final change."""
        if outcome.test_code is not None:
            try:
                workspace.write(outcome.test_file, outcome.test_code)
            except WorkspaceError as exc:
                outcome.notes.append(f"the generated tests were not added to the branch: {exc}")
        for test in outcome.generated_tests if final_run else []:
            test.after, test.after_text = result_of(final_run, test.id)

    def _judge(self, workspace: Workspace, config: RepoConfig, outcome: Outcome):
        """Run the suite and the new tests; what newly fails, and the failure text for the programmer."""
        try:
            run = self._run_suite(workspace, config, outcome)
        except SetupFailed as exc:
            summary = TestSummary(problem=RunProblem.SETUP_FAILED, problem_text="setup failed after the change")
            failure = f"Installing the changed repository failed:\n{exc.log_tail[-2000:]}"
            return summary, TestSummary(), [], [failure], None
        suite = TestSummary.of(run)
        baseline_failing = set(outcome.baseline.failing if outcome.baseline else [])
        regressions = [test for test in suite.failing if test not in baseline_failing]
        failures = _failure_texts(run, set(regressions))
        if run.problem in {RunProblem.TIMEOUT, RunProblem.OUT_OF_MEMORY, RunProblem.REPORT_MISMATCH}:
            failures.append(run.describe_problem())
        new_tests, new_run = TestSummary(), None
        if outcome.test_code is not None:
            new_run = self._run_new_tests(workspace, config, outcome.test_code, outcome)
            new_tests = TestSummary.of(new_run)
            failures += _failure_texts(new_run, set(new_tests.failing))
            if new_run.problem:
                failures.append(f"{outcome.test_file}: {new_run.describe_problem()}")
                new_tests.failing = new_tests.failing or [outcome.test_file]
        return suite, new_tests, regressions, failures, new_run

    def _feedback(self, number: int, workspace: Workspace, problems: list[str], failures: list[str],
                  outcome: Outcome, changed: list[str]) -> str:
        text = "\n\n".join(failures)
        if len(text) > FEEDBACK_CHARS:
            text = text[:FEEDBACK_CHARS] + "\n...[more failures trimmed]"
        budget = self.limits.context_token_budget * CHARS_PER_TOKEN // 2
        files = []
        for path in changed:
            content = workspace.read(path)
            if content is not None and len(content) <= budget:
                files.append({"path": path, "text": content})
                budget -= len(content)
        return render(
            "feedback", iteration=number, max_iterations=self.limits.max_iterations,
            edit_problems=describe_problems(problems) if problems else "", failures=text,
            preexisting=outcome.baseline.failing if outcome.baseline else [], changed_files=files,
        )

    def _run_suite(self, workspace: Workspace, config: RepoConfig, outcome: Outcome) -> RunResult:
        run = self.sandbox.run_tests(workspace.path, config)
        outcome.test_s += run.duration_s
        self.progress(StepEvent(Step.TESTS, f"suite: {format_counts(run)}"))
        return run

    def _run_new_tests(self, workspace: Workspace, config: RepoConfig, code: str, outcome: Outcome) -> RunResult:
        run = self.sandbox.run_tests(workspace.path, config, extra_files={outcome.test_file: code},
                                     selection=[outcome.test_file])
        outcome.test_s += run.duration_s
        self.progress(StepEvent(Step.TESTS, f"new tests: {format_counts(run)}"))
        return run


def _failure_texts(run: RunResult, failing: set[str]) -> list[str]:
    out = []
    for test in run.tests:
        if test.id in failing:
            message = test.message if len(test.message) <= FAILURE_CHARS else "..." + test.message[-FAILURE_CHARS:]
            out.append(f"{test.outcome.upper()} {test.id}\n{message}")
    for error in run.collection_errors:
        if f"{error.id} (collection)" in failing:
            out.append(f"ERROR collecting {error.id}\n{error.message[-FAILURE_CHARS:]}")
    return out

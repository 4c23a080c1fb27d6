"""The test designer's box of the paper's figure, as steps of the loop: new tests written from the issue and the
unchanged code (or the tests already on the bot's branch, revised as the maintainers asked), each module
validated on the unchanged code and its tests classified fail-to-pass or regression.

The designer sees the issue, the unchanged code, its own module and the reviewers' words
about the tests: never the programmer's work.
"""

from __future__ import annotations

from bot.loop.agents import Issue, test_explanations
from bot.loop.designer_context import DesignerContext
from bot.loop.evidence import function_of, function_sources, result_of
from bot.loop.outcome import (
    DesignAttempt,
    GeneratedTest,
    Outcome,
    Step,
    StepEvent,
    TestRevision,
)
from bot.loop.revision import TestReview, drop_tests, module_change
from bot.outside.model import Role
from bot.outside.workspace import Workspace
from bot.repo_config import RepoConfig
from bot.sandbox.results import RunResult

FAILURE_CHARS = 1_500


class TestDesignSteps:
    """The loop's test-design steps; AgentLoop supplies the designer, the limits, the sandbox runs and the tallies."""

    __test__ = False  # not a pytest test class

    def _design_tests(self, workspace: Workspace, issue: Issue, config: RepoConfig, outcome: Outcome,
                      view: DesignerContext) -> None:
        """Test designer → new tests, validated on the unchanged code; unusable modules go back to the designer."""
        problem = previous = None
        for attempt in range(1, self.limits.max_test_design_attempts + 1):
            if not self._check_budgets(outcome):
                return
            self.progress(StepEvent(Step.TEST_DESIGN, f"test designer: writing tests (attempt {attempt})"))
            design = self.designer.design(issue, view, outcome.test_file, config.instructions, problem, previous)
            self._count(outcome, Role.TEST_DESIGNER, design.reply)
            problem, previous = design.problem, design.code
            if problem is None:
                run = self._run_new_tests(workspace, config, design.code, outcome)
                problem = self._unusable(run, outcome.test_file)
                if problem is None:
                    outcome.design_attempts.append(self._attempt(attempt, None, design))
                    self._classify(design.code, run, outcome)
                    return
            outcome.design_attempts.append(self._attempt(attempt, problem, design))
        outcome.notes.append(f"the test designer gave no usable tests in {self.limits.max_test_design_attempts}"
                             f" attempts (last problem: {problem.splitlines()[0] if problem else 'none'});"
                             " the change is judged by the existing suite only")

    def _review_tests(self, unchanged: Workspace, issue: Issue, config: RepoConfig, current: str, review: TestReview,
                      outcome: Outcome, view: DesignerContext) -> None:
        """The generated tests already on the branch, revised as the maintainers asked, validated on the unchanged code.

        A revision that cannot be used goes back to the designer (bounded); after the last attempt the
        previous tests are kept. The designer sees the issue, the unchanged code's interfaces, its own module
        and the reviewers' words: never the programmer's work.
        """
        run = self._run_new_tests(unchanged, config, current, outcome)
        if self._unusable(run, outcome.test_file):
            outcome.notes.append("the generated tests on this branch cannot be collected on the unchanged code;"
                                 " the test designer writes them afresh")
            return self._design_tests(unchanged, issue, config, outcome, view)
        if not review.requested:
            return self._classify(current, run, outcome)
        before = {test.id: test.kind for test in self._classify(current, run, outcome)}
        revision = TestRevision(review.asked(), kinds_before=before)
        code = drop_tests(current, set(review.drop)) if review.drop else current
        revised_run = None
        if review.feedback:
            problem = previous = None
            for attempt in range(1, self.limits.max_test_design_attempts + 1):
                if not self._check_budgets(outcome):
                    break
                self.progress(StepEvent(Step.TEST_DESIGN, f"test designer: revising the tests (attempt {attempt})"))
                design = self.designer.revise(issue, view, outcome.test_file, code, list(review.feedback),
                                              config.instructions, problem, previous)
                self._count(outcome, Role.TEST_DESIGNER, design.reply)
                revision.attempts = attempt
                problem, previous = design.problem, design.code
                if problem is None:
                    revised_run = self._run_new_tests(unchanged, config, design.code, outcome)
                    problem = self._unusable(revised_run, outcome.test_file)
                    if problem is None:
                        code = design.code
                        break
                    revised_run = None
            revision.problem = problem
            if problem is not None:
                outcome.notes.append(f"the test designer's revision could not be used in {revision.attempts} attempt(s)"
                                     f" (last problem: {problem.splitlines()[0] if problem else 'none'});"
                                     " the previous tests were kept")
        if revised_run is None and code != current:
            revised_run = self._run_new_tests(unchanged, config, code, outcome)
        tests = self._classify(code, revised_run or run, outcome)
        change = module_change(current, code, outcome.test_file)
        revision.accepted = code != current
        revision.added, revision.removed, revision.changed, revision.diff = (
            change.added, change.removed, change.changed, change.diff)
        revision.kinds_after = {test.id: test.kind for test in tests}
        for test in tests:
            test.revised = function_of(test.id) in change.added + change.changed
        outcome.test_revisions.append(revision)

    @staticmethod
    def _unusable(run: RunResult, test_file: str) -> str | None:
        """Why a designed module cannot be used as it is (it does not collect), or None."""
        if run.collection_errors:
            return "pytest could not collect the module:\n" + "\n".join(e.message[-FAILURE_CHARS:] for e in run.collection_errors)
        if not run.tests and not run.timed_out:
            return f"pytest collected no tests from {test_file}"
        return None

    def _classify(self, code: str, run: RunResult, outcome: Outcome) -> list[GeneratedTest]:
        """Fail on the unchanged code → fail-to-pass (the issue is reproduced); pass → regression test."""
        outcome.test_code = code
        sources = function_sources(code)
        ids = [test.id for test in run.tests]
        if run.running_at_timeout and run.running_at_timeout not in ids:
            ids.append(run.running_at_timeout)
        outcome.generated_tests = []
        for name, explanation in test_explanations(code).items():
            for test_id in [i for i in ids if function_of(i) == name] or [f"{outcome.test_file}::{name}"]:
                before, why = result_of(run, test_id)
                kind = {"passed": "regression", "failed": "fail_to_pass", "error": "fail_to_pass"}.get(before, "unverified")
                outcome.generated_tests.append(
                    GeneratedTest(test_id, kind, explanation, sources.get(name, ""), before, why))
        outcome.reproduced = any(test.kind == "fail_to_pass" for test in outcome.generated_tests)
        return outcome.generated_tests

    @staticmethod
    def _note_reproduction(outcome: Outcome) -> None:
        if outcome.test_code is not None and not outcome.reproduced:
            outcome.notes.append("No generated test fails on the unchanged code: the new tests do not reproduce"
                                 " the issue, they only guard against regressions.")

    @staticmethod
    def _attempt(number: int, problem: str | None, design) -> DesignAttempt:
        return DesignAttempt(number, problem, design.reply.prompt_tokens + design.reply.completion_tokens,
                             round(design.reply.seconds, 3))

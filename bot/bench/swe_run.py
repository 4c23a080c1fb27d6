"""One SWE-bench instance, start to finish: the App's loop on the repository at `base_commit`, the prediction,
SWE-bench's resolution rule in our sandbox, and the test designer's tests judged against the gold patch.

Every checkout is a fresh clone of the instance's mirror (`--repos DIR/<owner>__<name>`, a checkout or a bare
repository) or, without mirrors, of GitHub. The loop is the one the App runs (built by the composition root, run by `run_fix`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.bench.swe import Designed, Instance, InstanceResult, Status, prediction
from bot.loop.agent_loop import AgentLoop
from bot.loop.agents import Issue
from bot.loop.context import is_test_path
from bot.loop.fix import NotFixable, run_fix
from bot.loop.outcome import Outcome, Stop
from bot.outside.workspace import Workspace, WorkspaceError, temporary_directory
from bot.repo_config import RepoConfigError, load_repo_config
from bot.sandbox.executor import Sandbox
from bot.sandbox.results import RunResult, SetupFailed

Progress = Callable[[str], None]
BRANCH = "agentcoder/swe"
FAILING = {"failed", "error"}


class InstanceSkipped(Exception):
    """The instance cannot be started (no mirror, base commit missing); the message is one line."""


def mirror_source(repos: Path | None, instance: Instance) -> str:
    """Where to clone the instance's repository from: its mirror under `repos`, else GitHub."""
    if repos is None:
        return f"https://github.com/{instance.repo}.git"
    mirror = repos / instance.mirror_name
    if not mirror.is_dir():
        raise InstanceSkipped(f"no mirror {mirror} (prepare it with scripts/prepare-swe-mirrors)")
    return str(mirror.resolve())


def checkout(source: str, dest: Path, commit: str) -> Workspace:
    """A fresh clone at `commit`; InstanceSkipped when the commit is not there."""
    try:
        return Workspace.clone_at(source, dest, commit)
    except WorkspaceError as exc:
        raise InstanceSkipped(str(exc)) from exc


def files_of(test_ids: Sequence[str]) -> list[str]:
    """The files of pytest node ids: whole files run, so ids with odd characters need no quoting rules."""
    return sorted({test_id.split("::")[0] for test_id in test_ids})


def judge(instance: Instance, run: RunResult) -> tuple[bool, dict[str, str], list[str]]:
    """SWE-bench's rule: resolved when every FAIL_TO_PASS passes and no PASS_TO_PASS fails or is missing."""
    outcomes = run.outcomes()
    for error in run.collection_errors:
        outcomes.setdefault(error.id, "error")
    fail_to_pass = {test: outcomes.get(test, "missing") for test in instance.fail_to_pass}
    broken = [test for test in instance.pass_to_pass if outcomes.get(test, "missing") in FAILING | {"missing"}]
    resolved = all(result == "passed" for result in fail_to_pass.values()) and not broken
    return resolved, fail_to_pass, broken


def classify_designed(before: RunResult, after: RunResult, expected: int) -> Designed:
    """Generated tests: fail before and pass with the gold patch → fail-to-pass; pass both → regression;
    fail with the gold patch → wrong. A module that cannot be collected counts as failing every test."""
    designed = Designed()
    if after.collection_errors or not after.tests:
        designed.wrong = max(expected, len(before.tests))
        return designed
    ahead = before.outcomes()
    for test in after.tests:
        if test.outcome == "skipped":
            continue
        if test.outcome != "passed":
            designed.wrong += 1
        elif before.collection_errors or ahead.get(test.id, "missing") in FAILING | {"missing"}:
            designed.fail_to_pass += 1
        else:
            designed.regression += 1
    return designed


class SweRunner:
    """Runs the loop on instances, writes nothing itself: returns each instance's record and prediction."""

    def __init__(self, sandbox: Sandbox, make_loop: Callable[[Progress], AgentLoop], model_name: str,
                 repos: Path | None = None):
        self.sandbox = sandbox
        self.make_loop = make_loop
        self.model_name = model_name  # `model_name_or_path` of the predictions
        self.repos = repos

    def run(self, instance: Instance, progress: Progress = lambda _: None) -> tuple[InstanceResult, dict | None]:
        """One instance: (its record, its prediction or None when the loop never produced one)."""
        result = InstanceResult(instance.instance_id, Status.COMPLETED)
        started = time.monotonic()
        try:
            source = mirror_source(self.repos, instance)
            with temporary_directory("agentcoder-swe-") as scratch:
                workspace = checkout(source, scratch / "work", instance.base_commit)
                outcome = self._fix(workspace, instance, progress)
                self._record(result, outcome)
                changed = [path for path in workspace.changed_files(instance.base_commit)
                           if not is_test_path(path) and path != outcome.test_file]
                model_patch = workspace.diff(instance.base_commit, changed)
                if outcome.stop is Stop.MODEL_ERROR:
                    return result, None  # not predicted: a later run with a working model tries it again
                if outcome.stop is Stop.SETUP_FAILED:
                    result.status, result.reason = Status.SETUP_FAILED, outcome.stop_reason
                    return result, prediction(instance.instance_id, self.model_name, model_patch)
                self._score(result, instance, source, scratch, model_patch, outcome)
                return result, prediction(instance.instance_id, self.model_name, model_patch)
        except InstanceSkipped as exc:
            result.status, result.reason = Status.SKIPPED, str(exc)
            return result, None
        finally:
            result.wall_s = round(time.monotonic() - started, 3)

    def _fix(self, workspace: Workspace, instance: Instance, progress: Progress) -> Outcome:
        loop = self.make_loop(lambda message: progress(f"{instance.instance_id}: {message}"))
        try:
            return run_fix(loop, workspace, Issue.from_text(instance.problem_statement), BRANCH)
        except NotFixable as exc:
            raise InstanceSkipped(str(exc)) from exc

    def _record(self, result: InstanceResult, outcome: Outcome) -> None:
        result.stop = outcome.stop.value
        result.iterations = len(outcome.iterations)
        result.tokens = {agent: usage.total_tokens for agent, usage in outcome.tokens.items()}
        result.cost_usd = {agent: None if usage.cost_usd is None else round(usage.cost_usd, 6)
                           for agent, usage in outcome.tokens.items()}
        result.loop_s = round(outcome.wall_s, 3)
        result.sandbox_s = round(outcome.test_s, 3)
        result.files_changed = [path for path in outcome.files_changed if path != outcome.test_file]
        if outcome.stop is Stop.CONFIG_ERROR:
            result.reason = outcome.stop_reason

    def _score(self, result: InstanceResult, instance: Instance, source: str, scratch: Path, model_patch: str,
               outcome: Outcome) -> None:
        """SWE-bench's rule on prediction + test patch; then the designer's tests on base and base + gold."""
        if not instance.scorable and not instance.patch:
            return
        check = checkout(source, scratch / "check", instance.base_commit)
        try:
            config = load_repo_config(check.path)
            if instance.scorable:
                self._resolve(result, instance, check, config, model_patch)
            if instance.patch:
                check.restore(instance.base_commit, {})
                result.designed = self._designed(result, check, config, instance, outcome)
        except RepoConfigError as exc:
            result.status, result.reason = Status.ERROR, str(exc)
        except SetupFailed:
            result.status, result.reason = Status.SETUP_FAILED, "installing the repository for scoring failed"

    def _resolve(self, result: InstanceResult, instance: Instance, check: Workspace, config, model_patch: str) -> None:
        result.resolved = False
        for name, patch in (("the prediction", model_patch), ("test_patch", instance.test_patch)):
            if not patch:
                continue
            try:
                check.apply_patch(patch)
            except WorkspaceError as exc:
                result.status, result.reason = Status.ERROR, f"{name} does not apply to {instance.base_commit[:12]}: {exc}"
                return
        run = self.sandbox.run_tests(check.path, config,
                                     selection=files_of(instance.fail_to_pass + instance.pass_to_pass))
        result.sandbox_s = round(result.sandbox_s + run.duration_s, 3)
        result.resolved, result.fail_to_pass, result.pass_to_pass_failed = judge(instance, run)

    def _designed(self, result: InstanceResult, check: Workspace, config, instance: Instance,
                  outcome: Outcome) -> Designed:
        if outcome.test_code is None:
            return Designed()
        files = {outcome.test_file: outcome.test_code}
        before = self.sandbox.run_tests(check.path, config, extra_files=files, selection=[outcome.test_file])
        result.sandbox_s = round(result.sandbox_s + before.duration_s, 3)
        try:
            check.apply_patch(instance.patch)
        except WorkspaceError:
            return Designed(wrong=len(outcome.generated_tests))
        after = self.sandbox.run_tests(check.path, config, extra_files=files, selection=[outcome.test_file])
        result.sandbox_s = round(result.sandbox_s + after.duration_s, 3)
        return classify_designed(before, after, len(outcome.generated_tests))

"""Agent mode of `agentcoder bench`: the three-agent loop at function level, scored by the hidden tests afterwards.

Each task becomes a tiny git repository whose `solution.py` holds a stub (HumanEval: the prompt with a body
that raises; MBPP: the function the first assert calls), and an issue carrying the task text the agents may
see. The real AgentLoop works on it as on any repository: designed tests validated on the stub, SEARCH/REPLACE
edits, executor feedback. The dataset's tests never enter the loop; they score the final `solution.py`
afterwards, and the canonical solution measures how often the test designer's tests are right.
"""

from __future__ import annotations

import ast
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.bench.protocol import TaskScore, bench_report, score_completions
from bot.bench.tasks import BenchInputError, Task, agent_prompt
from bot.loop.agent_loop import AgentLoop
from bot.loop.agents import Issue
from bot.loop.outcome import Outcome, Stop
from bot.outside.model import Role
from bot.outside.workspace import Workspace, temporary_directory
from bot.repo_config import load_repo_config
from bot.sandbox.executor import Sandbox

SOLUTION_FILE = "solution.py"
# The same for every task, so all tasks share one environment image (the file is part of its key).
TASK_CONFIG = """\
timeout: 60
instructions: |
  This repository is one function-level programming task: solution.py holds the function to write.
  Tests import it from the module `solution`.
"""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TaskRun:
    """What the loop left for one task, before scoring."""

    task_id: str
    solution: str
    outcome: Outcome
    designed_tests: int  # tests the designer wrote that ran against the canonical solution
    designed_correct: int  # of those, how many the canonical solution passes


def stub_source(task: Task) -> str:
    """The unsolved `solution.py`: the HumanEval prompt with a raising body, or a stub of the MBPP entry point."""
    if task.benchmark == "humaneval":
        return task.prompt + "    raise NotImplementedError\n"
    call = next(node for node in ast.walk(ast.parse(task.test_list[0]))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == task.entry_point)
    params = [f"arg{number}" for number in range(1, len(call.args) + 1)] + [kw.arg for kw in call.keywords if kw.arg]
    doc = " ".join(task.text.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'def {task.entry_point}({", ".join(params)}):\n    """{doc}"""\n    raise NotImplementedError\n'


def canonical_source(task: Task) -> str:
    """`solution.py` as the dataset's own solution writes it."""
    return task.prompt + task.canonical_solution if task.benchmark == "humaneval" else task.canonical_solution


def task_issue(task: Task, show_tests: str) -> Issue:
    """The issue the agents work on: the task text they may see, and nothing of the hidden tests."""
    text = agent_prompt(task, show_tests)
    if task.benchmark == "humaneval":
        text = f"```python\n{text}```"
    body = f"`{SOLUTION_FILE}` holds a stub of `{task.entry_point}`. Implement it as this task describes:\n\n{text}"
    return Issue(f"Implement {task.entry_point}", body)


def create_task_repository(path: Path, task: Task) -> Workspace:
    """A fresh git repository holding the task's stub and its `.agentcoder.yml`."""
    files = {SOLUTION_FILE: stub_source(task), ".agentcoder.yml": TASK_CONFIG}
    return Workspace.create(path, files, f"Stub of {task.entry_point}")


def designer_accuracy(sandbox: Sandbox, workspace: Workspace, outcome: Outcome, task: Task) -> tuple[int, int]:
    """(designed tests run, of them passed) with the canonical solution laid over a copy of the repository."""
    if outcome.test_code is None:
        return 0, 0
    run = sandbox.run_tests(workspace.path, load_repo_config(workspace.path),
                            extra_files={SOLUTION_FILE: canonical_source(task), outcome.test_file: outcome.test_code},
                            selection=[outcome.test_file])
    # Tests a timeout or a collection error kept from reporting still count, as not passed.
    return max(len(run.tests), len(outcome.generated_tests)), run.count("passed")


def solve_task(make_loop: Callable[[Progress], AgentLoop], sandbox: Sandbox, task: Task, show_tests: str,
               progress: Progress = lambda _: None) -> TaskRun:
    """Run the loop on one task's repository and measure its designed tests on the canonical solution."""
    task_progress: Progress = lambda message: progress(f"{task.task_id}: {message}")  # noqa: E731
    with temporary_directory("agentcoder-bench-") as scratch:
        workspace = create_task_repository(scratch / "task", task)
        outcome = make_loop(task_progress).run(workspace, task_issue(task, show_tests))
        total, correct = designer_accuracy(sandbox, workspace, outcome, task)
        solution = workspace.read(SOLUTION_FILE) or ""
    progress(f"{task.task_id}: {outcome.stop_reason} ({len(outcome.iterations)} iteration(s))")
    return TaskRun(task.task_id, solution, outcome, total, correct)


def run_agents(
    benchmark: str,
    tasks: Sequence[Task],
    sandbox: Sandbox,
    image: str,
    make_loop: Callable[[Progress], AgentLoop],
    *,
    show_tests: str = "first",
    parallel: int = 2,
    progress: Progress = lambda _: None,
) -> dict:
    """Solve every task with the loop, then score the final solutions; BenchInputError when no model answers."""
    started = time.monotonic()
    solve = lambda task: solve_task(make_loop, sandbox, task, show_tests, progress)  # noqa: E731
    # One task alone first: a model that cannot be reached should cost one task, not the whole benchmark.
    first = solve(tasks[0])
    if first.outcome.stop is Stop.MODEL_ERROR and not any(
            usage.calls for usage in first.outcome.tokens.values()):
        raise BenchInputError(first.outcome.stop_reason)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        runs = [first, *pool.map(solve, tasks[1:])]
    progress(f"scoring {len(runs)} final solution(s) with the hidden tests")
    scores = score_completions(sandbox, image, tasks, {run.task_id: run.solution for run in runs}, parallel=parallel)
    return agents_report(benchmark, show_tests, runs, scores, time.monotonic() - started)


def agents_report(benchmark: str, show_tests: str, runs: Sequence[TaskRun], scores: Sequence[TaskScore],
                  duration_s: float) -> dict:
    """The `agentcoder bench --json` object of an agent run."""
    report = bench_report(benchmark, scores, duration_s)
    report["mode"] = "agents"
    report["show_tests"] = show_tests if benchmark == "mbpp" else None
    for entry, run in zip(report["tasks"], runs):
        outcome = run.outcome
        entry.pop("duration_s")
        entry.update({
            "iterations": len(outcome.iterations),
            "tokens": {agent: usage.total_tokens for agent, usage in outcome.tokens.items()},
            "loop_resolved": outcome.resolved,
            "stop": outcome.stop.value,
            "stop_reason": outcome.stop_reason,
            "designed_tests": run.designed_tests,
            "designed_tests_correct": run.designed_correct,
            "wall_s": round(outcome.wall_s, 3),
            "model_s": round(outcome.model_s, 3),
            "test_s": round(outcome.test_s, 3),
        })
    histogram = Counter(len(run.outcome.iterations) for run in runs)
    designed = sum(run.designed_tests for run in runs)
    correct = sum(run.designed_correct for run in runs)
    report["iteration_histogram"] = {str(used): histogram[used] for used in sorted(histogram)}
    report["tokens"] = {agent: sum(task["tokens"][agent] for task in report["tasks"])
                        for agent in Role}
    report["test_designer_accuracy"] = round(correct / designed, 4) if designed else None
    report["designed_tests"], report["designed_tests_correct"] = designed, correct
    report["loop_resolved"] = sum(run.outcome.resolved for run in runs)
    return report


def format_agents_report(report: dict) -> str:
    """An agent run as text: pass@1, iterations, tokens, the designer's accuracy, then each task that did not pass."""
    shown = f", {report['show_tests']} assert(s) shown" if report["show_tests"] else ""
    histogram = ", ".join(f"{used} → {count} task{'s' if count != 1 else ''}"
                          for used, count in report["iteration_histogram"].items())
    tokens = report["tokens"]
    accuracy = report["test_designer_accuracy"]
    lines = [
        f"{report['benchmark']} (agents{shown}): pass@1 {report['pass_at_1']:.1%}"
        f" ({report['passed']}/{report['total']} passed) in {report['duration_s']:.1f} s",
        f"iterations used: {histogram}",
        f"tokens: programmer {tokens['programmer']:,}, test designer {tokens['test_designer']:,}"
        f" ({(tokens['programmer'] + tokens['test_designer']) // max(1, report['total']):,} per task)",
        "test designer accuracy: " + (f"{accuracy:.1%} ({report['designed_tests_correct']} of"
                                      f" {report['designed_tests']} designed tests pass on the canonical solution)"
                                      if accuracy is not None else "no usable tests were designed"),
        f"the loop judged {report['loop_resolved']} of {report['total']} task(s) resolved by its own tests",
    ]
    failed = [task for task in report["tasks"] if not task["passed"]]
    if failed:
        lines.append("not passed:")
        lines += [f"  {task['task_id']}: {task['result']} (loop: {task['stop_reason']})" for task in failed]
    return "\n".join(lines)

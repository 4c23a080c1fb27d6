"""Benchmark scoring: the paper's protocol (HumanEval, MBPP) run in the sandbox.

Each task's program is built exactly as the reference harnesses build it, then run as its own
Python process with its own timeout by a small runner inside a locked-down container; many
tasks share a container and containers run in parallel. Data loading lives in bench_data.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.bench.tasks import (
    BenchInputError,
    Task,
    load_tasks,
    read_completions,
)
from bot.sandbox.executor import Sandbox

RUNNER = Path(__file__).parent.parent / "sandbox" / "container" / "bench_runner.py"
RUNNER_PREFIX = "AGENTCODER-BENCH "
# Printed as a program's last statement: exit status 0 without it means the program quit early
# (sys.exit(0), os._exit(0)) instead of passing its tests.
SENTINEL = "AGENTCODER-BENCH-TESTS-FINISHED"
# A batch's results come back on the container's console, which the sandbox caps; one result
# line (a detail of at most 200 characters) takes well under this many bytes.
RESULT_LINE_BYTES = 1000


@dataclass(frozen=True)
class TaskScore:
    """One task's score."""

    task_id: str
    passed: bool
    result: str  # "passed" | "failed: <one line>" | "timed out"
    duration_s: float = 0.0


def is_whole_function(completion: str, entry_point: str) -> bool:
    """True when a completion defines the entry point itself (imports and a def) rather than its body."""
    significant = [line for line in completion.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not significant or not significant[0].startswith(("def ", "async def ", "import ", "from ", "@")):
        return False
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", completion, re.MULTILINE) is not None


def build_program(task: Task, completion: str) -> str:
    """The program that scores one completion, as the benchmark's reference harness builds it."""
    if task.benchmark == "humaneval":
        if is_whole_function(completion, task.entry_point):
            # Keep what the prompt defines before the entry point: imports and helpers the tests use.
            start = re.search(rf"^def\s+{re.escape(task.entry_point)}\s*\(", task.prompt, re.MULTILINE)
            code = (task.prompt[: start.start()] if start else "") + completion
        else:
            code = task.prompt + completion
        program = code + "\n" + task.test + f"\ncheck({task.entry_point})\n"
    else:
        program = "\n".join(task.test_imports) + "\n" + completion + "\n" + "\n".join(task.test_list) + "\n"
    return program + f"\nprint({SENTINEL!r})\n"


def score_completions(
    sandbox: Sandbox,
    image: str,
    tasks: Sequence[Task],
    completions: Mapping[str, str],
    *,
    timeout_s: float = 10.0,
    tasks_per_container: int = 40,
    parallel: int = 2,
) -> list[TaskScore]:
    """Score each task's completion in the sandbox; one score per task, in the order of `tasks`."""
    scores: dict[str, TaskScore] = {}
    to_run: list[tuple[str, str]] = []
    for task in tasks:
        if task.task_id in completions:
            to_run.append((task.task_id, build_program(task, completions[task.task_id])))
        else:
            scores[task.task_id] = TaskScore(task.task_id, False, "failed: no completion")
    fits_console = sandbox.limits.output_bytes // RESULT_LINE_BYTES
    size = max(1, min(tasks_per_container, fits_console, math.ceil(len(to_run) / parallel)))
    batches = [to_run[start : start + size] for start in range(0, len(to_run), size)]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for batch_scores in pool.map(lambda batch: _score_batch(sandbox, image, batch, timeout_s), batches):
            scores.update((score.task_id, score) for score in batch_scores)
    return [scores[task.task_id] for task in tasks]


def bench_report(benchmark: str, scores: Sequence[TaskScore], duration_s: float) -> dict:
    """The `agentcoder bench --json` object."""
    passed = sum(score.passed for score in scores)
    return {
        "benchmark": benchmark,
        "pass_at_1": round(passed / len(scores), 4) if scores else 0.0,
        "passed": passed,
        "total": len(scores),
        "duration_s": round(duration_s, 2),
        "tasks": [
            {"task_id": s.task_id, "passed": s.passed, "result": s.result, "duration_s": round(s.duration_s, 3)}
            for s in scores
        ],
    }


def format_report(report: dict) -> str:
    """The report as text: pass@1 on the first line, then each task that did not pass."""
    lines = [
        f"{report['benchmark']}: pass@1 {report['pass_at_1']:.1%} ({report['passed']}/{report['total']} passed)"
        f" in {report['duration_s']:.1f} s"
    ]
    failed = [task for task in report["tasks"] if not task["passed"]]
    if failed:
        lines.append("not passed:")
        lines += [f"  {task['task_id']}: {task['result']}" for task in failed]
    return "\n".join(lines)


def run_score(
    name: str,
    completions_path: Path | str,
    limit: int | None,
    as_json: bool,
    sandbox: Sandbox,
    image: str,
    *,
    timeout_s: float = 10.0,
    parallel: int = 2,
) -> str | dict:
    """`agentcoder bench NAME --completions FILE [--limit N] [--json]`: the report, as text or a JSON object.

    Raises BenchInputError (one line) for a usage or input error.
    """
    every_task = load_tasks(name)
    if limit is not None and limit < 1:
        raise BenchInputError(f"--limit must be at least 1, not {limit}")
    completions = read_completions(completions_path)
    known = {task.task_id for task in every_task}
    unknown = sorted(set(completions) - known)
    if unknown:
        raise BenchInputError(
            f"{completions_path}: {len(unknown)} task id(s) are not in {name}, for example {', '.join(unknown[:3])}"
        )
    tasks = every_task[:limit] if limit is not None else every_task
    started = time.monotonic()
    scores = score_completions(sandbox, image, tasks, completions, timeout_s=timeout_s, parallel=parallel)
    report = bench_report(name, scores, time.monotonic() - started)
    return report if as_json else format_report(report)


def _score_batch(sandbox: Sandbox, image: str, batch: Sequence[tuple[str, str]], timeout_s: float) -> list[TaskScore]:
    scores: list[TaskScore] = []
    remaining = list(batch)
    while remaining:
        records, exit_code, container_timed_out = _run_runner(sandbox, image, [program for _, program in remaining],
                                                              timeout_s)
        done = 0
        while done < len(remaining) and done in records:
            scores.append(_score_from_record(remaining[done][0], records[done]))
            done += 1
        if done == len(remaining):
            break
        # The runner died (a task killed every process it could, or the container's limit hit):
        # the task it was running is charged, the tasks after it get a fresh container.
        task_id = remaining[done][0]
        if container_timed_out:
            scores.append(TaskScore(task_id, False, "timed out"))
        else:
            scores.append(TaskScore(task_id, False, f"failed: the sandbox runner died while this task ran"
                                                    f" (exit code {exit_code})"))
        remaining = remaining[done + 1 :]
    return scores


def _run_runner(sandbox: Sandbox, image: str, programs: Sequence[str],
                timeout_s: float) -> tuple[dict[int, dict], int | None, bool]:
    """Run programs in one container: (index → result record, runner's exit code, container timed out)."""
    names = [f"tasks/{index:04d}.py" for index in range(len(programs))]
    files = {"bench_runner.py": RUNNER.read_text(encoding="utf-8"), **dict(zip(names, programs))}
    command = ["python3", "-I", "bench_runner.py", "--timeout", str(timeout_s), "--sentinel", SENTINEL, *names]
    # Each task has its own timeout inside; this outer one only catches a runner that cannot finish.
    container_timeout = len(programs) * (timeout_s + 2) + 30
    started = time.monotonic()
    exit_code, output, _ = sandbox.run_script(image, files, command, container_timeout)
    timed_out = time.monotonic() - started >= container_timeout
    index_of = {name: index for index, name in enumerate(names)}
    records = {index_of[name]: record for name, record in _parse_runner_output(output).items() if name in index_of}
    return records, exit_code, timed_out


def _parse_runner_output(output: str) -> dict[str, dict]:
    records = {}
    for line in output.splitlines():
        if line.startswith(RUNNER_PREFIX):
            try:
                record = json.loads(line[len(RUNNER_PREFIX) :])
            except ValueError:
                continue  # a line cut by a kill
            records[record["name"]] = record
    return records


def _score_from_record(task_id: str, record: dict) -> TaskScore:
    outcome = record["outcome"]
    result = f"failed: {record['detail']}" if outcome == "failed" else outcome
    return TaskScore(task_id, outcome == "passed", result, float(record.get("duration_s", 0.0)))

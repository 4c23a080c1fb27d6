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
    REPORT_MISMATCH = "report_mismatch"


class SetupFailed(Exception):
    """Installing the repository into its environment image failed."""

    def __init__(self, log_tail: str):
        super().__init__("installing the repository in the sandbox failed")
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{self.args[0]}; the setup log ends:\n{self.log_tail[-1500:]}"


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
    report_mismatch: str | None = None

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
            and not self.report_mismatch
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
        if self.report_mismatch:
            return RunProblem.REPORT_MISMATCH
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
        if problem is RunProblem.REPORT_MISMATCH:
            return f"the test report cannot be trusted: {self.report_mismatch}"
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


@dataclass
class Report:
    """The plugin's report of one run: outcomes (each test's worst), collection errors, and session records."""

    tests: list[TestOutcome] = field(default_factory=list)
    errors: list[CollectionError] = field(default_factory=list)
    running: str | None = None
    collected: list[str] | None = None
    finish: int | None = None
    repeated: list[str] = field(default_factory=list)
    bad_lines: int = 0
    truncated: bool = False
    distributed: bool = False


def parse_report(lines: Iterator[str] | Sequence[str]) -> tuple[list[TestOutcome], list[CollectionError], str | None]:
    """Turn the plugin's JSON lines into outcomes; also the test that started but never finished."""
    report = read_report(lines)
    return report.tests, report.errors, report.running


def read_report(lines: Iterator[str] | Sequence[str]) -> Report:
    """The plugin's JSON lines as a Report; a malformed line is skipped and counted, never an error.

    Records can only be added, never taken back: each test keeps its worst outcome, and the first
    `collected` and `finish` records count (a second one is noted for the cross-check).
    """
    report = Report()
    outcomes: dict[str, TestOutcome] = {}
    for line in lines:
        try:
            record = json.loads(line)
            kind = record.get("kind")
            if kind == "start":
                report.running = str(record["id"])
            elif kind == "collect_error":
                report.errors.append(CollectionError(str(record["id"]), str(record.get("message", ""))))
            elif kind == "test":
                if record["outcome"] not in OUTCOME_RANK:
                    raise ValueError(record["outcome"])
                new = TestOutcome(str(record["id"]), record["outcome"], str(record.get("message", "")),
                                  float(record.get("duration_s", 0.0)))
                old = outcomes.get(new.id)
                if old is None or OUTCOME_RANK[new.outcome] > OUTCOME_RANK[old.outcome]:
                    outcomes[new.id] = new
            elif kind == "end" and record.get("id") == report.running:
                report.running = None
            elif kind == "collected" and record.get("distributed") is True:
                report.distributed = True
            elif kind == "collected":
                if report.collected is None:
                    report.collected = [str(nodeid) for nodeid in record["ids"]]
                else:
                    report.repeated.append("collected")
            elif kind == "finish":
                if report.finish is None:
                    report.finish = int(record["exitstatus"])
                else:
                    report.repeated.append("finish")
        except (ValueError, TypeError, KeyError, AttributeError):
            report.bad_lines += 1  # a line cut by a kill, or not one of ours
    report.tests = list(outcomes.values())
    return report


class ReportReader:
    """Collects the report channel's bytes as they stream in, up to a limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream."""
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        self.data += chunk[:max(room, 0)]

    def report(self) -> Report:
        """The report read so far."""
        report = read_report(self.data.decode("utf-8", errors="replace").splitlines())
        report.truncated = self.truncated
        return report

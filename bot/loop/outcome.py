"""What one run of the loop produced: the iteration log, as data (JSON) for reports and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.outside.model import Reply, Role
from bot.sandbox.results import RunProblem, RunResult


class Stop(StrEnum):
    """How a run of the loop stopped (the `"stop"` of the JSON log; a contract)."""

    RESOLVED = "resolved"
    NOT_RESOLVED = "not_resolved"
    BUDGET = "budget"
    CANCELLED = "cancelled"
    MODEL_ERROR = "model_error"
    SETUP_FAILED = "setup_failed"
    CONFIG_ERROR = "config_error"


class Step(StrEnum):
    """Which box of the paper's figure the loop is in (what a progress event is about)."""

    BASELINE = "baseline"
    TEST_DESIGN = "test_design"
    PROGRAMMER = "programmer"
    TESTS = "tests"


@dataclass(frozen=True)
class StepEvent:
    """One progress event of the loop: the step, and a line for a person."""

    step: Step
    text: str
    iteration: int | None = None

    def __str__(self) -> str:
        return self.text


class Price(Protocol):
    """A model's price (`bot.config.ModelPrice`): dollars for a number of tokens."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float: ...


Prices = Mapping[str, Price]


@dataclass
class Usage:
    """Tokens, model time and dollars of one agent, on the model(s) it asked for."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    seconds: float = 0.0
    model: str = ""  # the model the agent asked for ("a, b" if it changed within a run)
    cost_usd: float | None = 0.0  # None: a model without a configured price was used (cost unknown)

    def add(self, reply: Reply, prices: Prices | None = None) -> None:
        """Count one model answer, priced by the model it came from (unknown when that has no price)."""
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.calls += 1
        self.seconds += reply.seconds
        self._add_model(reply.model)
        price = (prices or {}).get(reply.model)
        cost = None if price is None else price.cost(reply.prompt_tokens, reply.completion_tokens)
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def merge(self, other: Usage) -> None:
        """Add another tally to this one."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.seconds += other.seconds
        if other.calls:
            for model in other.model.split(", "):
                self._add_model(model)
        self.cost_usd = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd

    def _add_model(self, model: str) -> None:
        if model and model not in self.model.split(", "):
            self.model = f"{self.model}, {model}" if self.model else model

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class TestSummary:
    """Counts and failing ids of one sandboxed run."""

    __test__ = False  # not a pytest test class

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)
    problem: RunProblem | None = None
    problem_text: str | None = None
    seconds: float = 0.0

    @classmethod
    def of(cls, run: RunResult) -> TestSummary:
        """Summarise a run."""
        failing = [test.id for test in run.tests if test.outcome in {"failed", "error"}]
        failing += [f"{error.id} (collection)" for error in run.collection_errors]
        return cls(run.count("passed"), run.count("failed"), run.count("error") + len(run.collection_errors),
                   run.count("skipped"), failing, run.problem, run.describe_problem(), round(run.duration_s, 3))


@dataclass
class GeneratedTest:
    """One test the test designer wrote, as the maintainers review it."""

    id: str
    kind: str  # fail_to_pass | regression | unverified
    explanation: str
    code: str = ""  # the test function's source
    before: str = ""  # its result on the unchanged code: passed | failed | error | skipped | not run
    before_text: str = ""  # unless it passed there: the trimmed assertion or exception that shows why
    after: str = ""  # its result on the final change ("" when no change was tested)
    after_text: str = ""
    revised: bool = False  # the test designer changed it (or added it) on review in this run


@dataclass
class TestRevision:
    """One review of the generated tests and what became of it: the request, the change, the new classification."""

    __test__ = False  # not a pytest test class

    asked: str  # what the reviewers asked (their words, trimmed), or `drop test_a test_b`
    attempts: int = 0  # answers of the test designer (0 for a drop)
    accepted: bool = False  # False: every attempt was unusable, the previous tests were kept
    problem: str | None = None  # why the last attempt could not be used
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    diff: str = ""
    kinds_before: dict[str, str] = field(default_factory=dict)  # test id → kind on the unchanged code, before
    kinds_after: dict[str, str] = field(default_factory=dict)  # and after the revision


@dataclass
class DesignAttempt:
    """One answer of the test designer and what became of it."""

    attempt: int
    problem: str | None
    tokens: int
    seconds: float


@dataclass
class Iteration:
    """One programmer turn and the test run that judged it."""

    number: int
    plan: str
    files_changed: list[str]
    edit_problems: list[str]
    suite: TestSummary
    new_tests: TestSummary
    regressions: list[str]
    feedback: str
    tokens: dict[str, Usage]
    wall_s: float
    model_s: float
    test_s: float
    reads: list[str] = field(default_factory=list)  # code the programmer asked to READ this iteration


@dataclass
class Outcome:
    """The whole run: whether the issue is resolved, and the log that says how."""

    stop: Stop = Stop.NOT_RESOLVED
    stop_reason: str = ""  # the human detail beside `stop`
    issue_title: str = ""
    issue_number: int | None = None
    test_file: str = ""
    test_code: str | None = None
    generated_tests: list[GeneratedTest] = field(default_factory=list)
    reproduced: bool = False
    design_attempts: list[DesignAttempt] = field(default_factory=list)
    test_revisions: list[TestRevision] = field(default_factory=list)
    baseline: TestSummary | None = None
    iterations: list[Iteration] = field(default_factory=list)
    tokens: dict[str, Usage] = field(default_factory=lambda: {Role.PROGRAMMER: Usage(), Role.TEST_DESIGNER: Usage()})
    wall_s: float = 0.0
    model_s: float = 0.0
    test_s: float = 0.0
    files_changed: list[str] = field(default_factory=list)
    best_iteration: int | None = None
    notes: list[str] = field(default_factory=list)
    localized: list[str] = field(default_factory=list)  # where the programmer's localization pointed
    hidden_text_removed: list[str] = field(default_factory=list)  # e.g. "issue text: 1 HTML comment"
    # Added lines that run at import or exit, or reach into pytest: "path:line: what: text", for the maintainer.
    look_here: list[str] = field(default_factory=list)
    branch: str | None = None
    commit: str | None = None

    @property
    def resolved(self) -> bool:
        """True when the loop stopped because the issue is resolved."""
        return self.stop is Stop.RESOLVED

    def stopped(self, stop: Stop, reason: str) -> None:
        """Record how the run stopped, with a human detail."""
        self.stop, self.stop_reason = stop, reason

    @property
    def total_tokens(self) -> int:
        """Tokens of both agents together."""
        return sum(usage.total_tokens for usage in self.tokens.values())

    @property
    def cost_usd(self) -> float | None:
        """Dollars of both agents together; None when a model without a configured price was used."""
        costs = [usage.cost_usd for usage in self.tokens.values()]
        return None if None in costs else sum(costs)

    @property
    def overhead_s(self) -> float:
        """The loop's own time: wall time minus model time minus test time."""
        return max(0.0, self.wall_s - self.model_s - self.test_s)

    def to_json(self) -> dict:
        """The JSON iteration log (`agentcoder fix --json-log`)."""
        data = asdict(self)
        data.pop("test_code")
        data["stop"] = self.stop.value
        data["resolved"] = self.resolved
        data["total_tokens"] = self.total_tokens
        data["cost_usd"] = self.cost_usd
        data["overhead_s"] = round(self.overhead_s, 3)
        return data

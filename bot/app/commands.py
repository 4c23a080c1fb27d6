"""`/agentcoder retry ...` as a typed command: guidance for the programmer, feedback on the tests, or tests to drop.

    /agentcoder retry [guidance]            the programmer runs again, with the guidance
    /agentcoder retry tests: <what is wrong> the test designer revises its tests first (the programmer never sees this)
    /agentcoder retry drop test_a test_b     those generated tests are removed; the rest run again

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

MAX_DROPPED = 50
_TESTS = re.compile(r"tests?\s*:", re.IGNORECASE)
_DROP = re.compile(r"drop(?=\s|$)", re.IGNORECASE)
_NAME = re.compile(r"(?:[\w./-]+::)?(test\w*)(?:\[[^\]\s]*\])?")


class RetryKind(str, Enum):
    """What a retry asks for."""

    GUIDANCE = "guidance"
    TESTS = "tests"
    DROP = "drop"


@dataclass(frozen=True)
class RetryCommand:
    """A parsed `/agentcoder retry`; `problem` is a one-line answer when it cannot be acted on."""

    kind: RetryKind
    text: str = ""  # guidance for the programmer (GUIDANCE) or what is wrong with the tests (TESTS)
    names: tuple[str, ...] = ()  # test functions to drop (DROP)
    problem: str | None = None

    @property
    def guidance(self) -> str:
        """What the programmer may read of this command: only guidance is for it."""
        return self.text if self.kind is RetryKind.GUIDANCE else ""

    @property
    def tests_feedback(self) -> str:
        """What the test designer reads of this command."""
        return self.text if self.kind is RetryKind.TESTS else ""


def parse_retry(text: str) -> RetryCommand:
    """The command in the text after `/agentcoder retry`."""
    text = text.strip()
    if match := _TESTS.match(text):
        feedback = text[match.end():].strip()
        if not feedback:
            return RetryCommand(RetryKind.TESTS, problem="say what is wrong with the tests after `tests:`")
        return RetryCommand(RetryKind.TESTS, feedback)
    if match := _DROP.match(text):
        words = [word for word in re.split(r"[\s,]+", text[match.end():]) if word]
        if not words:
            return RetryCommand(RetryKind.DROP, problem="name the generated tests to drop, e.g."
                                                        " `/agentcoder retry drop test_empty_list`")
        names, bad = [], []
        for word in words[:MAX_DROPPED + 1]:
            found = _NAME.fullmatch(word.strip("`"))
            if found and found.group(1) not in names:
                names.append(found.group(1))
            elif not found:
                bad.append(word)
        if bad:
            shown = re.sub(r"[^\w.:\[\]-]", "?", bad[0])[:60]
            return RetryCommand(RetryKind.DROP, problem=f"`{shown}` is not the name of a test function")
        if len(words) > MAX_DROPPED:
            return RetryCommand(RetryKind.DROP, problem=f"drop at most {MAX_DROPPED} tests at a time")
        return RetryCommand(RetryKind.DROP, names=tuple(names))
    return RetryCommand(RetryKind.GUIDANCE, text)

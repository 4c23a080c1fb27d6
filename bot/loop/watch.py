"""Lines of a change that run when the package is imported or the process exits, or that reach into pytest.

Such code can act outside the tests that judged the change (an `atexit` hook runs after pytest has reported,
`os._exit` ends the run before it reports, a patched pytest changes the verdict itself); the verdict is
cross-checked against that, and the PR names these lines so a maintainer looks there first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WATCHED = (
    ("atexit", re.compile(r"\batexit\b")),
    ("os._exit", re.compile(r"\bos\._exit\b")),
    ("pytest", re.compile(r"\b_?pytest\b|\bpluggy\b")),
    ("sys.modules", re.compile(r"\bsys\.modules\b")),
    ("builtins", re.compile(r"\b__builtins__\b|\bbuiltins\.")),
    ("signal handler", re.compile(r"\bsignal\.signal\b")),
    ("tracing hook", re.compile(r"\bsys\.(?:settrace|setprofile|addaudithook)\b")),
)
MAX_LINES = 10


@dataclass(frozen=True)
class WatchedLine:
    """One added line worth a maintainer's look: where, what it touches, the line itself."""

    path: str
    line: int
    what: str
    text: str


def watched_lines(diff: str, test_paths: frozenset[str] = frozenset()) -> list[WatchedLine]:
    """The added lines of a unified diff that touch what runs at import or exit, or pytest (test files excepted)."""
    found: list[WatchedLine] = []
    path, number = "", 0
    for raw in diff.splitlines():
        if raw.startswith("+++ "):
            path = raw[4:].removeprefix("b/")
        elif raw.startswith("@@"):
            match = re.search(r"\+(\d+)", raw)
            number = int(match.group(1)) if match else 0
        elif raw.startswith("+") and path not in test_paths:
            for what, pattern in _WATCHED:
                if pattern.search(raw):
                    found.append(WatchedLine(path, number, what, raw[1:].strip()[:200]))
                    break
            number += 1
        elif not raw.startswith("-"):
            number += 1
    return found[:MAX_LINES]

"""Per-repository settings: the optional `.agentcoder.yml` at the root of the target repository.

```yaml
setup:                      # shell commands that install the repository (default: pip as found)
  - pip install -e .[test]
test_command: python -m pytest -q tests   # default: python -m pytest
timeout: 300                # seconds for one test run
instructions: |             # extra text for both agents
  Keep the public API backwards compatible.
protected_paths:            # globs the programmer may not edit
  - docs/**
workflow_paths:             # workflows the programmer may edit (the App also needs the workflows permission)
  - .github/workflows/docs.yml
```

The operator's limits are upper bounds: a `timeout` above the operator's is cut down to it.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FILE_NAME = ".agentcoder.yml"
DEFAULT_TEST_COMMAND = "python -m pytest"
MAX_BYTES = 64 * 1024


class RepoConfigError(Exception):
    """The repository's `.agentcoder.yml` is malformed; the message says where."""


@dataclass(frozen=True)
class RepoConfig:
    """What a repository asks of the bot."""

    setup: tuple[str, ...] | None = None
    test_command: str = DEFAULT_TEST_COMMAND
    timeout_s: float | None = None
    instructions: str = ""
    protected_paths: tuple[str, ...] = field(default_factory=tuple)
    workflow_paths: tuple[str, ...] = field(default_factory=tuple)

    def is_protected(self, path: str) -> bool:
        """True when the programmer may not edit this repository-relative path."""
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.protected_paths)

    def timeout_within(self, operator_timeout_s: float) -> float:
        """The timeout of one test run: the repository's, but never more than the operator's."""
        return min(self.timeout_s or operator_timeout_s, operator_timeout_s)


def _strings(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise RepoConfigError(f"{FILE_NAME}: '{key}' must be a string or a list of strings")


def parse_repo_config(text: str) -> RepoConfig:
    """Parse the text of `.agentcoder.yml`; an empty file means all defaults."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise RepoConfigError(f"{FILE_NAME} is not valid YAML{where}") from exc
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigError(f"{FILE_NAME} must be a mapping of settings")
    known = {"setup", "test_command", "timeout", "instructions", "protected_paths", "workflow_paths"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        # Name the keys (shortened, printable only) but never quote the file's values.
        names = ", ".join(repr("".join(ch for ch in name[:40] if ch.isprintable())) for name in unknown[:5])
        raise RepoConfigError(f"{FILE_NAME}: unknown setting(s) {names}; known: {', '.join(sorted(known))}")
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or not math.isfinite(timeout) or timeout <= 0):
        raise RepoConfigError(f"{FILE_NAME}: 'timeout' must be a positive number of seconds")
    test_command = data.get("test_command", DEFAULT_TEST_COMMAND)
    if not isinstance(test_command, str) or not test_command.strip():
        raise RepoConfigError(f"{FILE_NAME}: 'test_command' must be a non-empty string")
    instructions = data.get("instructions", "")
    if not isinstance(instructions, str):
        raise RepoConfigError(f"{FILE_NAME}: 'instructions' must be a string")
    return RepoConfig(
        setup=_strings(data["setup"], "setup") if data.get("setup") is not None else None,
        test_command=test_command,
        timeout_s=float(timeout) if timeout is not None else None,
        instructions=instructions,
        protected_paths=_strings(data.get("protected_paths", []), "protected_paths"),
        workflow_paths=_strings(data.get("workflow_paths", []), "workflow_paths"),
    )


def load_repo_config(repo: Path) -> RepoConfig:
    """Read `.agentcoder.yml` from a checkout, or the defaults when there is none."""
    path = repo / FILE_NAME
    if path.is_symlink():
        raise RepoConfigError(f"{FILE_NAME} must be a regular file, not a symbolic link")
    if not path.exists():
        return RepoConfig()
    if not path.is_file():
        raise RepoConfigError(f"{FILE_NAME} must be a regular file")
    if path.stat().st_size > MAX_BYTES:
        raise RepoConfigError(f"{FILE_NAME} is larger than {MAX_BYTES // 1024} KiB")
    return parse_repo_config(path.read_text(encoding="utf-8", errors="replace"))

"""What the loop needs from the world, as small Protocols.

The real ones are `bot/sandbox/executor.Sandbox` (TestRunner) and `bot/outside/model.ModelClient`
(ChatModel); the unit tests hand in in-memory fakes, so the loop's logic runs without Docker or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from bot.outside.model import Reply, Role
from bot.repo_config import RepoConfig
from bot.sandbox.results import RunResult

Clock = Callable[[], float]


class TestRunner(Protocol):
    """Runs a repository's suite (or a selection) plus extra test files, in isolation; raises SetupFailed."""

    __test__ = False  # not a pytest test class

    def run_tests(self, repo: Path, config: RepoConfig, extra_files: Mapping[str, str] | None = None,
                  selection: Sequence[str] = ()) -> RunResult: ...


class ChatModel(Protocol):
    """Chat completions, each agent role on its own configured model; raises LLMError."""

    def complete(self, role: Role, messages: list[dict], *, max_tokens: int | None = None) -> Reply: ...

"""One programmer answer applied to the working copy, within what the programmer may change.

Every block passes the path rules first (the generated and existing tests, protected paths, symbolic links,
the guard's test machinery and workflows, the new-file cap), then the whole new text passes the guard's change
rules (pytest sections); only then is it written. Each refusal becomes one line of feedback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from bot.loop.context import is_test_path
from bot.loop.edits import EditBlock, apply_edits, limit_blocks
from bot.loop.guard import EditBounds, change_refusal, path_refusal
from bot.outside.workspace import Workspace, WorkspaceError
from bot.repo_config import RepoConfig

MAX_PROBLEMS_KEPT = 50


def edit_refusal(workspace: Workspace, config: RepoConfig, test_file: str,
                 max_new_files: int) -> Callable[[str], str | None]:
    """Why the programmer may not edit a path; it is asked before each block, and counts the new files of a run."""
    existing = set(workspace.files())
    existing_tests = {path for path in existing if is_test_path(path)}
    created: set[str] = set()

    def refuse(path: str) -> str | None:
        if path == test_file:
            return "it holds the generated tests, which the programmer may not change"
        if path in existing_tests:
            return "it is one of the repository's existing tests, which are read-only"
        reason = path_refusal(path, config.workflow_paths) or workspace.opaque(path)
        if reason:
            return reason
        if config.is_protected(path):
            return "it is protected by .agentcoder.yml (protected_paths)"
        if os.path.lexists(workspace.path / path) and workspace.read(path) is None:
            return "it is a directory, a binary file or too large to edit as text"
        if path not in existing and path not in created:
            if len(created) >= max_new_files:
                return f"a run may create at most {max_new_files} new files"
            created.add(path)
        return None

    return refuse


def apply_answer(blocks: Sequence[EditBlock], workspace: Workspace, refuse: Callable[[str], str | None],
                 bounds: EditBounds) -> list[str]:
    """Write what may be written of an answer's blocks; the problems, capped at MAX_PROBLEMS_KEPT lines."""
    kept, too_many = limit_blocks(blocks, bounds.max_blocks, bounds.max_new_text_bytes)
    applied = apply_edits(kept, workspace.read, refuse)
    problems = too_many + applied.problems
    for path, text in applied.files.items():
        reason = change_refusal(path, workspace.read(path), text)
        if reason is None:
            try:
                workspace.write(path, text)
            except WorkspaceError as exc:
                reason = str(exc)
        if reason is not None:
            problems.append(f"Edit to {path} refused: {reason}")
    return problems


def capped(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS_KEPT problems, and a line saying how many more there were."""
    if len(problems) <= MAX_PROBLEMS_KEPT:
        return problems
    return problems[:MAX_PROBLEMS_KEPT] + [f"... and {len(problems) - MAX_PROBLEMS_KEPT} more problems"]

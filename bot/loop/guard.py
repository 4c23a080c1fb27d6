"""What the programmer may never change, whatever the issue says: the tests' own machinery, the bot's
configuration and CI workflows. Pure: paths and texts in, a reason (or None) out.

A change to conftest.py, to pytest's configuration, to `sitecustomize`/`usercustomize` or to a `.pth`
file could make a failing run report success; `.agentcoder.yml` is the maintainer's; a workflow edit
needs a permission the App does not ask for by default (GitHub would refuse the whole push).
"""

from __future__ import annotations

import configparser
import fnmatch
import tomllib
from dataclasses import dataclass

CONFIG_FILE = ".agentcoder.yml"
WORKFLOWS = ".github/workflows/"
_STARTUP_MODULES = {"conftest.py", "sitecustomize.py", "usercustomize.py"}
_PYTEST_FILES = {"pytest.ini", ".pytest.ini"}
# The files where pytest reads a section of its own, and that section's name.
_PYTEST_SECTIONS = {"setup.cfg": "tool:pytest", "tox.ini": "pytest"}
_UNREADABLE = object()


@dataclass(frozen=True)
class EditBounds:
    """How much one answer and one run may change."""

    max_blocks: int = 40
    max_new_text_bytes: int = 200_000
    max_new_files: int = 20


def path_refusal(path: str, workflow_paths: tuple[str, ...] = ()) -> str | None:
    """Why the programmer may not create or edit `path` at all, or None."""
    name = path.rsplit("/", 1)[-1]
    if path == CONFIG_FILE:
        return "it is the maintainer's AgentCoder configuration, which only a maintainer may change"
    if name in _STARTUP_MODULES or name.endswith(".pth"):
        return f"{name} is test infrastructure (it runs before the tests and could change their results)"
    if name in _PYTEST_FILES:
        return f"{name} is pytest's configuration, which the programmer may not change"
    if path.startswith(WORKFLOWS) and not any(fnmatch.fnmatch(path, pattern) for pattern in workflow_paths):
        return ("GitHub Actions workflows are protected (a maintainer can allow one by granting the App the"
                " workflows permission and listing it under workflow_paths in .agentcoder.yml)")
    return None


def change_refusal(path: str, old: str | None, new: str) -> str | None:
    """Why a change to a file that is allowed in general is refused (it changes pytest's section), or None."""
    name = path.rsplit("/", 1)[-1]
    if "/" in path or name not in ("pyproject.toml", *_PYTEST_SECTIONS):
        return None
    if _pytest_settings(name, old or "") != _pytest_settings(name, new):
        return f"it changes pytest's configuration in {name}, which the programmer may not change"
    return None


def _pytest_settings(name: str, text: str) -> object:
    """pytest's part of a configuration file, in a form that compares equal when unchanged."""
    if name == "pyproject.toml":
        try:
            return tomllib.loads(text).get("tool", {}).get("pytest")
        except (tomllib.TOMLDecodeError, AttributeError):
            return _UNREADABLE
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return _UNREADABLE
    section = _PYTEST_SECTIONS[name]
    return dict(parser.items(section)) if parser.has_section(section) else None

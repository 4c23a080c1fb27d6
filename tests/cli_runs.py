"""`agentcoder` as the tests run it: in this process (milliseconds), or as a real process when what is checked is
the process itself (the `python -m bot.cli` entry point, its start-up, what it imports before refusing)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The settings' environment variables: a run starts without any of them but those the test gives.
SETTING_PREFIXES = ("AGENTCODER_", "OPENAI_")
# The App's heavy modules: a refusal of bad settings, arguments or .agentcoder.yml comes before any of them.
HEAVY_MODULES = frozenset({"bot.composition", "bot.loop.agent_loop", "openai", "docker", "githubkit", "fastapi",
                           "uvicorn"})


@dataclass
class Run:
    """What one `agentcoder` run gave: its exit status and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(capsys, argv: list[str], timeout_s: float = 60.0) -> Run:
    """`bot.cli.main(argv)` in this process, its output taken from `capsys`.

    It runs in a thread with a deadline, so a regression that starts serving instead of refusing fails the test
    rather than hanging the suite. An exception escaping main (a traceback for a user) is raised here.
    """
    from bot.cli import main

    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["code"] = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            outcome["code"] = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 — handed to the test below
            outcome["error"] = exc

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()  # only this run's output
    thread = threading.Thread(target=target, name="agentcoder-main", daemon=True)
    thread.start()
    thread.join(timeout_s)
    root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr()
    assert not thread.is_alive(), f"agentcoder {' '.join(argv)} still running after {timeout_s:g} s; stderr: {err}"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return Run(int(outcome["code"]), out, err)  # type: ignore[call-overload]


def clean_environment() -> dict[str, str]:
    """This process's environment without any AGENTCODER_* or OPENAI_* setting."""
    return {key: value for key, value in os.environ.items() if not key.startswith(SETTING_PREFIXES)}


def console_script() -> str:
    """The installed `agentcoder` console script of this interpreter (`scripts/setup` installs it)."""
    script = Path(sysconfig.get_path("scripts")) / "agentcoder"
    found = str(script) if script.is_file() else shutil.which("agentcoder")
    assert found, "the agentcoder console script is not installed: run scripts/setup (pip install -e '.[test]')"
    return found


def run_process(*args: object, env: dict[str, str], entry_point: bool = False,
                timeout_s: float = 120.0) -> tuple[Run, set[str]]:
    """`python -m bot.cli ARGS` (or the `agentcoder` console script) as a real process with this worktree's code;
    its run and the modules it imported."""
    program = [console_script()] if entry_point else [sys.executable, "-m", "bot.cli"]
    done = subprocess.run([*program, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout_s,
                          env={**env, "PYTHONPATH": str(ROOT), "PYTHONPROFILEIMPORTTIME": "1"})
    lines = done.stderr.splitlines(keepends=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
    printed = "".join(line for line in lines if not line.startswith("import time:"))
    return Run(done.returncode, done.stdout, printed), imported

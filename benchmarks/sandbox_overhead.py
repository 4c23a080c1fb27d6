"""Sandbox overhead: `agentcoder check` (the real CLI, a subprocess) against bare `pytest` on the host.

Usage: python benchmarks/sandbox_overhead.py [-n 5]
Builds a small package with a handful of tests in a scratch directory. Its `.agentcoder.yml` carries a
fresh nonce, so the first `agentcoder check` has to build the repository's environment image (it is
removed again at the end); later runs reuse it. Prints the first and second run, the medians over N
runs of `agentcoder check`, of `Sandbox.run_tests` in-process (no CLI start-up) and of host pytest (as
installed, and with plugin autoload off, like the sandbox image), and the base image's size.
Not a test: pytest does not collect this directory.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from bot.config import load_settings
from bot.repo_config import load_repo_config
from bot.sandbox.executor import Sandbox

MAX_RUNS = 50
FILES = {
    "pyproject.toml": """
        [project]
        name = "tinycalc"
        version = "0.1.0"

        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
    """,
    "tinycalc/__init__.py": """
        def add(a, b):
            return a + b


        def mean(values):
            return sum(values) / len(values)
    """,
    "tests/test_tinycalc.py": """
        import pytest

        from tinycalc import add, mean


        @pytest.mark.parametrize("a, b, total", [(1, 2, 3), (0, 0, 0), (-1, 1, 0), (2.5, 2.5, 5.0)])
        def test_add(a, b, total):
            assert add(a, b) == total


        def test_mean():
            assert mean([1, 2, 3, 4]) == 2.5


        def test_mean_of_nothing():
            with pytest.raises(ZeroDivisionError):
                mean([])
    """,
}


def make_repository(root: Path) -> Path:
    """The sample package, with a `.agentcoder.yml` unique to this run (a fresh environment image)."""
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    (root / ".agentcoder.yml").write_text(f"# benchmark run {uuid.uuid4().hex}\ntimeout: 60\n")
    return root


def timed(command: list[str], cwd: Path, env: dict | None = None) -> float:
    """Seconds one command took; exits if it did not succeed."""
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    """Time the runs and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help=f"timed runs of each kind (at most {MAX_RUNS})")
    args = parser.parse_args()
    runs = max(1, min(args.runs, MAX_RUNS))
    settings = load_settings()
    sandbox = Sandbox.from_settings(settings)
    check = [sys.executable, "-m", "bot.cli", "check"]
    with tempfile.TemporaryDirectory(prefix="agentcoder-bench-sandbox-") as scratch:
        repo = make_repository(Path(scratch) / "tinycalc")
        config = load_repo_config(repo)
        env_tag = sandbox.images.tag_for(repo, config)
        try:
            first = timed([*check, str(repo)], repo)
            second = timed([*check, str(repo)], repo)
            cli = [timed([*check, str(repo)], repo) for _ in range(runs)]
            in_process = []
            for _ in range(runs):
                result = sandbox.run_tests(repo, config)
                if not result.ok:
                    sys.exit(f"the sandboxed run did not pass: {result.describe_problem()}")
                in_process.append(result.duration_s)
            pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "PYTHONDONTWRITEBYTECODE": "1"}
            host = [timed(pytest, repo, env) for _ in range(runs)]
            # The host's Python may carry pytest plugins the sandbox image has not; this is the like-for-like floor.
            lean = [timed(pytest, repo, {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}) for _ in range(runs)]
        finally:
            subprocess.run(["docker", "image", "rm", "-f", env_tag], capture_output=True)
    size = subprocess.run(["docker", "image", "inspect", settings.sandbox_image, "--format", "{{.Size}}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    median = statistics.median
    rows = [
        ("agentcoder check, first run (builds the environment image)", first),
        ("agentcoder check, second run (image cached)", second),
        (f"agentcoder check, median of {runs}", median(cli)),
        (f"Sandbox.run_tests in-process, median of {runs}", median(in_process)),
        (f"bare pytest on the host, median of {runs}", median(host)),
        (f"bare pytest on the host, plugin autoload off, median of {runs}", median(lean)),
    ]
    for label, seconds in rows:
        print(f"{label:<64} {seconds:6.2f} s")
    for label, floor in (("host pytest", median(host)), ("host pytest, autoload off", median(lean))):
        print(f"agentcoder check over {label}: {median(cli) - floor:+.2f} s (x{median(cli) / floor:.1f});"
              f" the container alone {median(in_process) - floor:+.2f} s")
    print(f"CLI start-up and Docker connection: {median(cli) - median(in_process):+.2f} s")
    print(f"base image {settings.sandbox_image}: {int(size) / 1e6:.0f} MB")

if __name__ == "__main__":
    main()

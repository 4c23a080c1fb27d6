"""Time scoring all of HumanEval and all of MBPP with their canonical solutions in the sandbox.

Run with `python benchmarks/score_speed.py [--parallel N] [--tasks-per-container N]`; prints one
line per benchmark. Not a test: pytest does not collect this directory.
"""

from __future__ import annotations

import argparse
import time

from bot.bench.protocol import score_completions
from bot.bench.tasks import BENCHMARKS, canonical_completions, load_tasks
from bot.config import load_settings
from bot.sandbox.executor import Sandbox


def main() -> None:
    """Score each benchmark's canonical solutions and print pass@1 and the wall time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--tasks-per-container", type=int, default=40)
    args = parser.parse_args()
    settings = load_settings()
    sandbox = Sandbox.from_settings(settings)
    for name in BENCHMARKS:
        tasks = load_tasks(name)
        started = time.monotonic()
        scores = score_completions(sandbox, settings.sandbox_image, tasks, canonical_completions(name),
                                   parallel=args.parallel, tasks_per_container=args.tasks_per_container)
        elapsed = time.monotonic() - started
        passed = sum(score.passed for score in scores)
        slowest = max(scores, key=lambda score: score.duration_s)
        print(f"{name}: {passed}/{len(scores)} canonical solutions passed in {elapsed:.1f} s"
              f" (parallel {args.parallel}, {args.tasks_per_container} tasks per container;"
              f" slowest task {slowest.task_id} {slowest.duration_s:.2f} s)")


if __name__ == "__main__":
    main()

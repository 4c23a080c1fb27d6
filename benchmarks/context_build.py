"""How long building the agents' context takes, and how much memory, on a synthetic repository of
2,000 Python files and 50 MB (the target: under 2 s and under 200 MB).

Each run is a fresh interpreter: it reads the working copy as the loop does (`Workspace.source_files`),
then builds the programmer's context (ranking, skeletons, map) for an issue that names a function in
one of the files. Printed: read, build and total seconds (median of the runs) and the peak resident
memory of the process (interpreter and imports included), and the same without the imports.

    PYTHONPATH=. python3 benchmarks/context_build.py [--files 2000] [--megabytes 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = ("alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega vector matrix tensor buffer stream "
         "record header payload session socket parser lexer token cursor window frame layer codec schema field "
         "value index offset length count total limit margin border style color theme panel table column row cell "
         "render print format encode decode load dump read write open close flush merge split join build check").split()

MEASURE = """
import json, resource, sys, time
from pathlib import Path
from bot.loop.context import build_context
from bot.outside.workspace import Workspace
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
files = Workspace(Path(sys.argv[1])).source_files()
read = time.perf_counter()
context = build_context(files, sys.argv[2], 48_000)
built = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"files": len(files), "chars": sum(len(f.text) for f in files), "read_s": read - started,
                  "build_s": built - read, "total_s": built - started, "peak_mb": peak / 1024,
                  "imports_mb": before / 1024, "context_chars": context.size(),
                  "shown": [s.path for s in context.snippets]}))
"""


def module(rng: random.Random, index: int, target_chars: int) -> str:
    """One plausible module of about `target_chars` characters."""
    parts = [f'"""Module {index}: {" ".join(rng.sample(WORDS, 6))}."""\n\nimport os\nimport re\n']
    size = len(parts[0])
    count = 0
    while size < target_chars:
        count += 1
        a, b, c = rng.sample(WORDS, 3)
        if count % 7 == 0:
            block = (f"\n\nclass {a.title()}{b.title()}{count}:\n    \"\"\"The {a} of a {b}.\"\"\"\n\n"
                     f"    def __init__(self, {c}=None):\n        self.{c} = {c}\n\n"
                     f"    def {b}_{c}(self, items):\n        \"\"\"{b} every {c}.\"\"\"\n"
                     f"        return [item for item in items if item != self.{c}]\n")
        else:
            block = (f"\n\ndef {a}_{b}_{count}({c}, limit={count}):\n    \"\"\"Return the {a} {b} of {c}.\"\"\"\n"
                     f"    total = 0\n    for step in range(limit):\n        total += len(str({c})) * step\n"
                     f"    if total > {count * 10}:\n        return '{a}-{b}'\n    return total\n")
        parts.append(block)
        size += len(block)
    return "".join(parts)


def make_repository(root: Path, files: int, megabytes: int, seed: int = 7) -> str:
    """Write the repository (an untracked git working copy); returns an issue text about one of its functions."""
    rng = random.Random(seed)
    per_file = megabytes * 1_000_000 // files
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    target = None
    for index in range(files):
        path = root / f"pkg{index % 40}" / f"module_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = module(rng, index, per_file)
        path.write_text(text)
        if index == files // 2:
            target = text.split("\n\ndef ", 2)[1].split("(")[0]
    return (f"{target} returns the wrong total\n\nCalling `{target}(None)` gives 0 where the docs promise a string."
            "\n```\nTraceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n"
            f"    {target}(None)\nValueError: bad total\n```")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    project = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="agentcoder-context-bench-") as scratch:
        root = Path(scratch) / "repo"
        issue = make_repository(root, args.files, args.megabytes)
        runs = []
        for _ in range(args.runs):
            done = subprocess.run([sys.executable, "-c", MEASURE, str(root), issue], capture_output=True, text=True,
                                  check=True, cwd=project, env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})
            runs.append(json.loads(done.stdout))
    first = runs[0]
    median = {key: statistics.median(run[key] for run in runs) for key in ("read_s", "build_s", "total_s", "peak_mb")}
    print(f"synthetic repository: {first['files']:,} Python files, {first['chars'] / 1e6:.1f} M characters")
    print(f"read {median['read_s']:.2f} s + build {median['build_s']:.2f} s = {median['total_s']:.2f} s"
          f" (median of {args.runs}; target < 2 s)")
    print(f"peak memory {max(run['peak_mb'] for run in runs):.0f} MB (interpreter and imports"
          f" {first['imports_mb']:.0f} MB; target < 200 MB)")
    print(f"context {first['context_chars']:,} characters; shown first: {first['shown'][:1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

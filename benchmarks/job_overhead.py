"""Per-job overhead of the loop with a zero-latency scripted model, against the floor (the same tests run alone).

Usage: python benchmarks/job_overhead.py [-n 3] [--no-cli]
A sample repository (a slugify helper and its test) and an issue; the scripted model (127.0.0.1) answers at
once with tests that reproduce the issue and a fix that resolves it in one iteration. Each run is the real
AgentLoop in-process on a fresh clone: baseline, designed tests validated on the unchanged code, one
programmer turn, the suite and the new tests. The floor is one `Sandbox.run_tests` of the fixed repository
with the new tests. Then one `agentcoder fix` as a subprocess, for the whole command's wall time.
Not a test: pytest does not collect this directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from bot.config import load_settings
from bot.dev.openai_server import ScriptedOpenAI
from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Issue, Programmer, TestDesigner
from bot.outside.model import ModelClient
from bot.outside.workspace import Workspace
from bot.repo_config import load_repo_config
from bot.sandbox.executor import Sandbox

MAX_RUNS = 20
PROGRAMMER_MODEL, DESIGNER_MODEL = "job-coder", "job-tester"
REPO = {
    "textutil.py": '''
        def slugify(text):
            """Lower-case words joined by dashes."""
            return text.lower().replace(" ", "-")
    ''',
    "tests/test_textutil.py": '''
        from textutil import slugify

        def test_simple():
            assert slugify("Hello World") == "hello-world"
    ''',
}
ISSUE = Issue("slugify keeps punctuation",
              "slugify('Hello, World!') should give 'hello-world', not 'hello,-world!'.", 7)
TESTS = '''```python
def test_punctuation_removed():
    """Punctuation is dropped from the slug."""
    from textutil import slugify
    assert slugify("Hello, World!") == "hello-world"


def test_plain_words_still_work():
    """Plain words keep working."""
    from textutil import slugify
    assert slugify("a b") == "a-b"
```
'''
FIX = '''Plan: keep only letters and digits, joined by dashes.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(" ", "-")
=======
    import re
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
>>>>>>> REPLACE
'''


class CountingSandbox(Sandbox):
    """The real sandbox, counting its test runs."""

    def __init__(self, real: Sandbox):
        super().__init__(real.client, real.base_image, real.limits, timeout_s=real.timeout_s)
        self.runs = 0
        self._lock = threading.Lock()

    def run_tests(self, *args, **kwargs):
        with self._lock:
            self.runs += 1
        return super().run_tests(*args, **kwargs)


def make_repository(root: Path) -> Path:
    """The sample repository, committed on main."""
    Workspace.create(root, {relative: textwrap.dedent(text).lstrip() for relative, text in REPO.items()}, "initial")
    return root


def run_loop(sandbox: CountingSandbox, server: ScriptedOpenAI, client: ModelClient, source: Path, work: Path):
    """One in-process loop on a fresh clone: (outcome, sandbox runs, the floor of its tests)."""
    server.add(DESIGNER_MODEL, TESTS)
    server.add(PROGRAMMER_MODEL, FIX)
    workspace = Workspace.clone_local(source, work)
    before = sandbox.runs
    outcome = AgentLoop(sandbox, Programmer(client), TestDesigner(client), LoopLimits()).run(workspace, ISSUE)
    runs = sandbox.runs - before
    if not outcome.resolved:
        sys.exit(f"the scripted job did not resolve: {outcome.stop_reason}")
    tests = {outcome.test_file: workspace.read(outcome.test_file)}
    floor = sandbox.run_tests(workspace.path, load_repo_config(workspace.path), extra_files=tests)
    if not floor.ok:
        sys.exit(f"the floor run did not pass: {floor.describe_problem()}")
    return outcome, runs, floor.duration_s


def run_cli(server: ScriptedOpenAI, source: Path, scratch: Path) -> tuple[float, dict]:
    """`agentcoder fix` as a user runs it: (the command's wall time, its JSON log)."""
    server.add(DESIGNER_MODEL, TESTS)
    server.add(PROGRAMMER_MODEL, FIX)
    log = scratch / "log.json"
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER_MODEL,
           "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER_MODEL, "AGENTCODER_LLM_MAX_RETRIES": "0"}
    env.pop("OPENAI_API_KEY", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bot.cli", "fix", str(source), "--issue",
                           f"{ISSUE.title}\n\n{ISSUE.body}", "--json-log", str(log)],
                          capture_output=True, text=True, env=env, timeout=600)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"agentcoder fix failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, json.loads(log.read_text())


def main() -> None:
    """Run the jobs and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=3, help=f"in-process loop runs (at most {MAX_RUNS})")
    parser.add_argument("--no-cli", action="store_true", help="skip the `agentcoder fix` subprocess run")
    args = parser.parse_args()
    runs = max(1, min(args.runs, MAX_RUNS))
    sandbox = CountingSandbox(Sandbox.from_settings(load_settings()))
    rows = []
    with tempfile.TemporaryDirectory(prefix="agentcoder-bench-job-") as scratch, ScriptedOpenAI() as server:
        scratch = Path(scratch)
        source = make_repository(scratch / "source")
        client = ModelClient({"programmer": PROGRAMMER_MODEL, "test_designer": DESIGNER_MODEL},
                             base_url=server.base_url, timeout_s=10, max_retries=0)
        for number in range(runs):
            rows.append(run_loop(sandbox, server, client, source, scratch / f"work-{number}"))
        cli = None if args.no_cli else run_cli(server, source, scratch)
    median = statistics.median
    print(f"{'run':>4} {'wall s':>7} {'model s':>8} {'test s':>7} {'overhead s':>11} {'runs':>5} {'floor s':>8}")
    for number, (outcome, count, floor) in enumerate(rows, start=1):
        print(f"{number:>4} {outcome.wall_s:7.2f} {outcome.model_s:8.3f} {outcome.test_s:7.2f}"
              f" {outcome.overhead_s:11.3f} {count:5d} {floor:8.2f}")
    wall = median(outcome.wall_s for outcome, _, _ in rows)
    floor = median(floor for _, _, floor in rows)
    print(f"median loop wall {wall:.2f} s: model {median(o.model_s for o, _, _ in rows):.3f} s,"
          f" tests {median(o.test_s for o, _, _ in rows):.2f} s in {rows[0][1]} sandbox runs,"
          f" loop overhead {median(o.overhead_s for o, _, _ in rows):.3f} s")
    print(f"floor (the suite and the new tests in one sandbox run): {floor:.2f} s;"
          f" the job costs x{wall / floor:.1f} the floor (+{wall - floor:.2f} s)")
    if cli is not None:
        seconds, log = cli
        print(f"agentcoder fix (subprocess: start-up, clone, loop, commit, publish): {seconds:.2f} s wall;"
              f" its loop {log['wall_s']:.2f} s (model {log['model_s']:.3f} s, tests {log['test_s']:.2f} s,"
              f" overhead {log['overhead_s']:.3f} s)")


if __name__ == "__main__":
    main()

"""Runs benchmark programs one by one *inside* the sandbox and prints one JSON line per program.

Usage: ``python3 bench_runner.py --timeout S --sentinel TEXT PROGRAM...``. Each program runs as
its own Python process, in its own empty directory, in its own session, and is killed with its
whole process group after S seconds, so a hanging program costs its own timeout and no more.
All programs are read before the first one starts, so no program can rewrite a later one.
A program passes when it exits 0 *and* its last line of output is the sentinel (so `sys.exit(0)`
before the tests does not pass). Each result is one short line, so that a whole batch fits in a
capped console. Standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PREFIX = "AGENTCODER-BENCH "
TAIL_BYTES = 4000
DETAIL_LIMIT = 200


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--sentinel", required=True)
    parser.add_argument("programs", nargs="*")
    args = parser.parse_args()
    programs = []
    for path in args.programs:
        with open(path, encoding="utf-8") as source:
            programs.append((path, source.read()))
    for path, text in programs:
        print(PREFIX + json.dumps(run_one(path, text, args.timeout, args.sentinel), ensure_ascii=False), flush=True)


def run_one(name, text, timeout, sentinel):
    """Run one program in a fresh directory: {"name", "outcome": passed|failed|timed out, "detail", "duration_s"}."""
    directory = tempfile.mkdtemp(prefix="task-")
    try:
        with open(os.path.join(directory, "program.py"), "w", encoding="utf-8") as program:
            program.write(text)
        stdout_path = os.path.join(directory, ".stdout")
        stderr_path = os.path.join(directory, ".stderr")
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            started = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-I", "program.py"],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            timed_out = False
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(process.pid)
            process.wait()
            duration = time.monotonic() - started
        if timed_out:
            outcome, detail = "timed out", ""
        elif process.returncode == 0 and _tail(stdout_path).rstrip().endswith(sentinel):
            outcome, detail = "passed", ""
        else:
            outcome, detail = "failed", summarise_failure(_tail(stderr_path), process.returncode)
        return {"name": name, "outcome": outcome, "detail": detail, "duration_s": round(duration, 4)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def summarise_failure(stderr, exit_code):
    """One line saying why a program failed: its exception (with the failing assert), or how it ended."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip() and set(line.strip()) - set("^~")]
    if exit_code == 0:
        summary = "the program exited before its tests finished"
    elif exit_code < 0:
        name = _signal_name(-exit_code)
        summary = "killed by " + name + (" (out of memory?)" if name == "SIGKILL" else "")
    elif lines:
        # The exception line is the last one a traceback does not indent (several processes may have written).
        unindented = [line for line in lines if not line[0].isspace() and not line.startswith("Traceback (")]
        summary = (unindented or lines)[-1].strip()
        if summary == "AssertionError":
            source = _failing_source_line(lines)
            summary += ": " + source if source else ""
    else:
        summary = "exit code %d" % exit_code
    return summary if len(summary) <= DETAIL_LIMIT else summary[: DETAIL_LIMIT - 3] + "..."


def _failing_source_line(lines):
    # In a traceback the source line follows its `File "...", line N` line; the last one is where it failed.
    for index in range(len(lines) - 1, 0, -1):
        if lines[index - 1].lstrip().startswith('File "'):
            return lines[index].strip()
    return ""


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal %d" % number


def _kill_group(pid):
    # Also ends whatever the program left running in the background.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path):
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


if __name__ == "__main__":
    main()

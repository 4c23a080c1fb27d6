"""Runs benchmark programs one by one *inside* the sandbox and prints one JSON line per program.

Usage: ``python3 bench_runner.py --timeout S --sentinel TEXT PROGRAM...``. Each program runs as
its own Python process, in its own empty directory, in its own session, and is killed with its
whole process group after S seconds, so a hanging program costs its own timeout and no more.
All programs are read before the first one starts, so no program can rewrite a later one.
Standard library only.
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
TAIL_BYTES = 1500


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
        print(PREFIX + json.dumps(run_one(path, text, args.timeout, args.sentinel)), flush=True)


def run_one(name, text, timeout, sentinel):
    """Run one program in a fresh directory; its exit, whether it timed out or finished, its stderr tail."""
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
        return {
            "name": name,
            "exit": process.returncode,
            "timed_out": timed_out,
            "finished": _tail(stdout_path).rstrip().endswith(sentinel),
            "stderr": _tail(stderr_path),
            "duration_s": round(duration, 4),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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

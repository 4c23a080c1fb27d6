"""Scale-out end to end, as an operator runs it: PostgreSQL, `agentcoder serve` running no jobs, and two
`agentcoder worker` processes, all real processes, against the GitHub stand-in and the scripted model.

Labelled issues become draft PRs; a duplicate delivery adds no job; a second label on an issue whose job is
still queued supersedes it; a worker killed with SIGKILL mid-job has its job finished by the other worker,
over the branch it had half pushed, and the status comment says the job was restarted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.app.engines import queue_from_url
from bot.app.queue import FINAL_STATES
from bot.dev.github.standin import GitHubStandin
from bot.dev.openai_server import Fault, ScriptedOpenAI
from bot.outside.workspace import Workspace
from tests.cli_runs import clean_environment
from tests.conftest import free_port, make_repo
from tests.samples import DESIGNED_TESTS, ISSUE, SLUGIFY_REPO

ISSUE_TITLE, ISSUE_BODY = ISSUE.title, ISSUE.body
FIX = '''Plan: keep only letters and digits, joined by dashes.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(" ", "-")
=======
    import re
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
>>>>>>> REPLACE
'''

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

APP_ID, INSTALLATION_ID, OWNER, REPO, SECRET = 4343, 1, "octo-org", "textutil", "scaleout-secret"
PROGRAMMER, DESIGNER, MAINTAINER = "so-programmer", "so-designer", "maintainer"
HEARTBEAT_S, STALLED_AFTER_S = 0.5, 2.0


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


class Processes:
    """The operator's processes, each with its log file."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env, self.running = root, env, {}

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", *args], env={**self.env, **extra_env},
                                   stdout=log, stderr=subprocess.STDOUT, text=True)
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_serve_without_workers_and_two_workers_on_postgresql(tmp_path, postgres, sandbox):
    url = postgres.new_database()
    standin = GitHubStandin(tmp_path / "github", app_id=APP_ID, webhook_secret=SECRET).start()
    models = ScriptedOpenAI().start()
    env = {**clean_environment(), "PYTHONPATH": os.getcwd(), "AGENTCODER_DATABASE_URL": url,
           "AGENTCODER_GITHUB_APP_ID": str(APP_ID), "AGENTCODER_GITHUB_PRIVATE_KEY": standin.app_private_key_pem,
           "AGENTCODER_WEBHOOK_SECRET": SECRET, "AGENTCODER_GITHUB_API_URL": standin.api_url,
           "OPENAI_BASE_URL": models.base_url, "OPENAI_API_KEY": "scaleout-key",
           "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER, "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER,
           "AGENTCODER_LLM_MAX_RETRIES": "0", "AGENTCODER_WORKER_HEARTBEAT_S": str(HEARTBEAT_S),
           "AGENTCODER_WORKER_STALLED_AFTER_S": str(STALLED_AFTER_S)}
    processes = Processes(tmp_path, env)
    queue = queue_from_url(url)
    other = "worker-a"
    try:
        standin.create_repo(OWNER, REPO, make_repo(tmp_path / "sample", SLUGIFY_REPO, commit=False), INSTALLATION_ID)
        standin.set_permission(OWNER, REPO, MAINTAINER, "write")
        port = free_port()
        processes.start("serve", "serve", "--port", str(port), AGENTCODER_CONCURRENT_JOBS="0")
        wait_until(lambda: _healthy(port, processes), 60, "serve answering /healthz")
        standin.webhook_url = f"http://127.0.0.1:{port}/webhooks"

        # -- no worker yet: four labelled issues queue four jobs; a redelivery and a second label add none
        issues = [standin.create_issue(OWNER, REPO, f"{ISSUE_TITLE} ({n})", ISSUE_BODY) for n in range(4)]
        deliveries = [standin.label_issue(OWNER, REPO, number, "agentcoder", sender=MAINTAINER) for number in issues]
        assert [d.status_code for d in deliveries] == [202] * 4
        again = standin.deliver("issues", deliveries[0].payload, delivery_id=deliveries[0].delivery_id)
        assert again.status_code == 200 and '"duplicate"' in again.response_text
        relabel = standin.label_issue(OWNER, REPO, issues[0], "AgentCoder", sender=MAINTAINER)
        assert relabel.status_code == 202
        jobs = sorted(queue.recent(), key=lambda j: j.id)
        # Nothing is superseded before a worker has checked the sender of the newer trigger.
        assert len(jobs) == 5 and [j.state for j in jobs] == ["queued"] * 5 and jobs[4].issue_number == issues[0]
        assert "serving webhooks" in processes.log("serve") and "running no jobs" in processes.log("serve")

        # -- two workers: four draft PRs, one per issue
        models.add(DESIGNER, *[DESIGNED_TESTS] * 4)
        models.add(PROGRAMMER, *[FIX] * 4)
        processes.start("worker-a", "worker", AGENTCODER_CONCURRENT_JOBS="1")
        processes.start("worker-b", "worker", AGENTCODER_CONCURRENT_JOBS="1")
        wait_until(lambda: all(j.state in FINAL_STATES for j in queue.recent()), 400, "the four jobs")
        jobs = sorted(queue.recent(), key=lambda j: j.id)
        assert [j.state for j in jobs] == ["cancelled", "done", "done", "done", "done"], [j.detail for j in jobs]
        # Superseded while queued, or (when a worker took it before the newer trigger was admitted) while running.
        assert jobs[0].detail.startswith(f"superseded by job {jobs[4].id}")
        pulls = sorted(standin.pulls.values(), key=lambda p: p["number"])
        assert len(pulls) == 4 and all(p["pull"]["draft"] for p in pulls)
        assert sorted(int(re.search(r"Fixes #(\d+)", p["body"]).group(1)) for p in pulls) == sorted(issues)
        assert "job" in processes.log("worker-a") + processes.log("worker-b")
        both_worked = [name for name in ("worker-a", "worker-b") if re.search(r"job \d+ done", processes.log(name))]
        assert both_worked == ["worker-a", "worker-b"]

        # -- a worker killed mid-job, after it had pushed part of its work: the other one finishes the job
        fifth = standin.create_issue(OWNER, REPO, f"{ISSUE_TITLE} (5)", ISSUE_BODY)
        _half_push(standin, tmp_path / "half", fifth)
        models.add(DESIGNER, DESIGNED_TESTS, DESIGNED_TESTS)
        models.add(PROGRAMMER, Fault(status=200, delay_s=120, body=FIX), FIX)
        asked_before = len(models.requests_for(PROGRAMMER))
        standin.label_issue(OWNER, REPO, fifth, "agentcoder", sender=MAINTAINER)
        wait_until(lambda: len(models.requests_for(PROGRAMMER)) > asked_before, 200, "the programmer being asked")
        [job] = [j for j in queue.recent() if j.issue_number == fifth]
        holder = wait_until(lambda: next((name for name in ("worker-a", "worker-b")
                                          if f"job {job.id} started" in processes.log(name)), None), 10, "a holder")
        other = "worker-b" if holder == "worker-a" else "worker-a"
        sampler = StatusSampler(standin, fifth)
        os.kill(processes.running[holder].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: f"job {job.id} started" in processes.log(other), 60, "the rerun on the other worker")
        recovered_s = time.monotonic() - killed_at
        finished = wait_until(lambda: (j := queue.get(job.id)).state in FINAL_STATES and j, 300, "the rerun")
        assert (finished.state, finished.restarts) == ("done", 1), finished.detail
        print(f"\nrecovery after SIGKILL: {recovered_s:.1f} s (heartbeat {HEARTBEAT_S} s, stalled after"
              f" {STALLED_AFTER_S} s)")
        [pull] = [p for p in standin.pulls.values() if f"Fixes #{fifth}" in p["body"]]
        fixed = standin.read_file(OWNER, REPO, pull["pull"]["head"], "textutil.py")
        assert "re.findall" in fixed and "half-pushed" not in fixed
        [status] = [c for c in standin.comments_on(OWNER, REPO, fifth) if c["user"] == standin.bot_login]
        assert f"opened draft pull request #{pull['number']}" in status["body"]
        history = sampler.stop()
        assert any("AgentCoder restarted this job: the worker running it stopped." in body for body in history), history
    finally:
        processes.stop_all()
        queue.close()
        models.stop()
        standin.stop()
    for name in processes.running:
        assert "Traceback" not in processes.log(name), processes.log(name)
    assert "worker" in processes.log(other) and "stopped" in processes.log(other)  # SIGTERM: a clean stop


def _healthy(port: int, processes: Processes) -> bool:
    assert processes.running["serve"].poll() is None, processes.log("serve")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _half_push(standin: GitHubStandin, where: Path, number: int) -> None:
    """The killed worker's half-pushed work: a commit on the job's branch, and no PR."""
    token = standin.installation_token(INSTALLATION_ID)
    url = standin.git_url(OWNER, REPO)
    workspace = Workspace.clone_remote(url, token, where)
    workspace.start_branch(f"agentcoder/issue-{number}")
    workspace.write("textutil.py", workspace.read("textutil.py") + "\n# half-pushed by a worker that died\n")
    workspace.commit_all("half-pushed")
    workspace.push(url, token, f"agentcoder/issue-{number}")


class StatusSampler:
    """Every text the bot's comments on one issue held, sampled while a job runs (the stand-in keeps the last)."""

    def __init__(self, standin: GitHubStandin, number: int):
        self.standin, self.number, self.seen = standin, number, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for comment in self.standin.comments_on(OWNER, REPO, self.number):
                if comment["user"] == self.standin.bot_login and comment["body"] not in self.seen:
                    self.seen.append(comment["body"])

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(5)
        return self.seen

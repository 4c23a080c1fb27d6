"""The App's world for end-to-end tests: the stand-in GitHub, the scripted models, the App (`serve`) on the real
sandbox, and the sample repository, issue and scripted answers they share (the `world` fixture is in conftest)."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bot.app.queue import FINAL_STATES, Job
from bot.composition import Service, build_service
from bot.config import load_settings
from bot.dev.github.standin import GitHubStandin
from bot.dev.openai_server import ScriptedOpenAI
from bot.dev.serving import ThreadedServer
from bot.outside.github import GitHubApp
from bot.outside.workspace import Workspace
from tests.conftest import make_repo

APP_ID, INSTALLATION_ID = 4242, 1
OWNER, REPO = "octo-org", "calc"
FULL_NAME = f"{OWNER}/{REPO}"
MAINTAINER, REVIEWER = "maintainer", "reviewer"
SECRET = "e2e-webhook-secret"
PROGRAMMER, DESIGNER = "e2e-programmer", "e2e-test-designer"
TEST_FILE = "tests/agentcoder/test_issue_{}.py"

FILES = {
    "calc/__init__.py": "",
    "calc/stats.py": '''\
        def mean(values):
            """Arithmetic mean of a list of numbers."""
            return sum(values) / len(values)
    ''',
    "tests/test_stats.py": '''\
        from calc.stats import mean


        def test_mean():
            assert mean([1, 2, 3]) == 2
    ''',
}
ISSUE_TITLE = "mean() crashes on an empty list"
ISSUE_BODY = "`calc.stats.mean([])` raises ZeroDivisionError; it should raise ValueError like `statistics.mean`."

TESTS_MODULE = '''\
import pytest

from calc.stats import mean


def test_empty_list_raises_value_error():
    """mean([]) raises ValueError, not ZeroDivisionError."""
    with pytest.raises(ValueError):
        mean([])


def test_mean_of_two_numbers():
    """Ordinary input keeps its mean."""
    assert mean([2, 4]) == 3
'''
DESIGNED_TESTS = f"Tests from the issue text.\n\n```python\n{TESTS_MODULE}```\n"

RIGHT_PLAN = "raise ValueError for an empty list, as statistics.mean does."
RIGHT_FIX = f'''Clarify: an empty list must raise ValueError.
Plan: {RIGHT_PLAN}

calc/stats.py
<<<<<<< SEARCH
    return sum(values) / len(values)
=======
    if not values:
        raise ValueError("mean() of an empty list")
    return sum(values) / len(values)
>>>>>>> REPLACE
'''
WRONG_FIX = '''Plan: return 0 for an empty list.

calc/stats.py
<<<<<<< SEARCH
    return sum(values) / len(values)
=======
    if not values:
        return 0
    return sum(values) / len(values)
>>>>>>> REPLACE
'''
SECOND_FIX = f'''Clarify: the test expects ValueError.
Plan: {RIGHT_PLAN}

calc/stats.py
<<<<<<< SEARCH
        return 0
=======
        raise ValueError("mean() of an empty list")
>>>>>>> REPLACE
'''
RETRY_PLAN = "keep the guard clause and name the requirement in its message."
RETRY_FIX = f'''Plan: {RETRY_PLAN}

calc/stats.py
<<<<<<< SEARCH
        raise ValueError("mean() of an empty list")
=======
        raise ValueError("mean() needs at least one value")
>>>>>>> REPLACE
'''
USAGE_ROW = r"\| {agent} \| {calls} \| \d+ \| \d+ \| \d+\.\d s \|"


# -- the assembled App ------------------------------------------------------------------------------


@dataclass
class Running:
    """One App process: its service and its web server."""

    service: Service
    web: ThreadedServer

    @property
    def queue(self):
        return self.service.queue

    def jobs(self) -> list[Job]:
        """All jobs, oldest first."""
        return sorted(self.queue.recent(500), key=lambda job: job.id)

    def wait_for_jobs(self, count: int, timeout_s: float = 60.0) -> list[Job]:
        """Block until `count` jobs exist and all of them have finished."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            jobs = self.jobs()
            if len(jobs) >= count and all(job.state in FINAL_STATES for job in jobs):
                return jobs
            time.sleep(0.05)
        raise AssertionError(f"jobs did not finish within {timeout_s} s: {self.jobs()}")


class World:
    """The stand-in GitHub with a tiny repository, the scripted model server, and Apps built on one SQLite file."""

    def __init__(self, root: Path, sandbox):
        self.root = root
        self.sandbox = sandbox
        self.db = root / "queue.db"
        self.standin = GitHubStandin(root / "github", app_id=APP_ID, webhook_secret=SECRET).start()
        self.models = ScriptedOpenAI().start()
        self._apps: list[Running] = []
        self.standin.create_repo(OWNER, REPO, make_repo(root / "sample", FILES, commit=False), INSTALLATION_ID)
        self.standin.set_permission(OWNER, REPO, MAINTAINER, "write")

    def start_app(self, *, pool: bool = True, **overrides) -> Running:
        """Build the App exactly as `serve` does (build_service), serve it, point the webhooks at it; `overrides`
        are settings, over the world's own."""
        settings = load_settings(**{
            "github_app_id": str(APP_ID), "github_private_key": self.standin.app_private_key_pem,
            "webhook_secret": SECRET, "github_api_url": self.standin.api_url,
            "openai_base_url": self.models.base_url, "openai_api_key": "e2e-openai-key",
            "programmer_model": PROGRAMMER, "test_designer_model": DESIGNER,
            "database_url": f"sqlite:///{self.db}", "llm_max_retries": 0, "llm_timeout_s": 30, **overrides})
        service = build_service(settings, sandbox=self.sandbox)
        running = Running(service, ThreadedServer(service.web).start())
        self._apps.append(running)
        self.standin.webhook_url = f"{running.web.url}/webhooks"
        if pool:
            service.pool.start()
        return running

    def stop_app(self, running: Running) -> None:
        """Stop a process's workers and web server and close its queue (the process is gone)."""
        if running in self._apps:
            self._apps.remove(running)
            running.service.pool.stop()
            running.web.stop()
            running.queue.close()

    def close(self) -> None:
        for running in list(self._apps):
            self.stop_app(running)
        self.models.stop()
        self.standin.stop()

    # -- acting on the stand-in --------------------------------------------------------------------

    def issue(self, title: str = ISSUE_TITLE, body: str = ISSUE_BODY) -> int:
        return self.standin.create_issue(OWNER, REPO, title, body, user="octocat")

    def label(self, number: int, sender: str = MAINTAINER, label: str = "agentcoder"):
        return self.standin.label_issue(OWNER, REPO, number, label, sender=sender)

    def seed_bot_pull(self, issue_number: int) -> int:
        """A draft PR the App itself opened earlier for `issue_number` (pushed and opened over HTTP)."""
        token = self.standin.installation_token(INSTALLATION_ID)
        url = self.standin.git_url(OWNER, REPO)
        branch = f"agentcoder/issue-{issue_number}"
        workspace = Workspace.clone_remote(url, token, self.root / f"seed-{issue_number}")
        workspace.start_branch(branch)
        workspace.write("calc/stats.py", workspace.read("calc/stats.py") + "\n# an earlier attempt\n")
        workspace.commit_all("An earlier attempt")
        workspace.push(url, token, branch)
        app = GitHubApp(str(APP_ID), self.standin.app_private_key_pem, self.standin.api_url, auto_retry=False)
        return app.repo(FULL_NAME, INSTALLATION_ID).create_pull(
            ISSUE_TITLE, branch, "main", f"Fixes #{issue_number}").number

    # -- reading the stand-in ---------------------------------------------------------------------

    def bot_comments(self, number: int) -> list[dict]:
        return [c for c in self.standin.comments_on(OWNER, REPO, number) if c["user"] == self.standin.bot_login]

    def pulls(self) -> list[dict]:
        return sorted(self.standin.pulls.values(), key=lambda record: record["number"])

    def branch(self, number: int) -> str | None:
        return self.standin.branch_sha(OWNER, REPO, f"agentcoder/issue-{number}")

    def tokens(self) -> list[str]:
        return list(self.standin.store.snapshot("tokens"))


class Observer:
    """Samples, while jobs run, the bot's comments (to see one status comment being edited) and the
    `.git/config` of every job clone of this stand-in's repositories (the clones are gone afterwards)."""

    def __init__(self, world: World, interval_s: float = 0.02):
        self.world = world
        self.interval_s = interval_s
        self.bodies: dict[int, list[str]] = {}  # comment id → distinct bodies in the order seen
        self.git_configs: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()  # the state as the jobs left it

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def _sample(self) -> None:
        for comment in self.world.standin.comments:
            if comment["user"] == self.world.standin.bot_login:
                seen = self.bodies.setdefault(comment["id"], [])
                if not seen or seen[-1] != comment["body"]:
                    seen.append(comment["body"])
        for config in Path(tempfile.gettempdir()).glob("agentcoder-job-*/work/.git/config"):
            try:
                text = config.read_text()
            except OSError:  # the job removed its clone meanwhile
                continue
            if self.world.standin.api_url in text:
                self.git_configs[str(config)] = text


def assert_no_token_leaked(world: World, running: Running, observer: Observer) -> None:
    """No installation token in a clone's .git/config, a comment, a PR body, a job's detail or the queue file."""
    tokens = world.tokens()
    assert tokens, "the App never asked for an installation token"
    assert observer.git_configs, "no job clone was seen while the job ran"
    texts = {f"git config {path}": text for path, text in observer.git_configs.items()}
    texts |= {f"comment {c['id']}": c["body"] for c in world.standin.comments}
    texts |= {f"comment {cid} (earlier)": body for cid, bodies in observer.bodies.items() for body in bodies}
    texts |= {f"PR #{p['number']} body": p["body"] or "" for p in world.pulls()}
    texts |= {f"job {job.id} detail": job.detail for job in running.jobs()}
    for path in world.root.glob("queue.db*"):
        texts[f"queue file {path.name}"] = path.read_bytes().decode("utf-8", "replace")
    for where, text in texts.items():
        for token in tokens:
            assert token not in text, f"an installation token leaked into {where}"
    for text in observer.git_configs.values():
        assert "extraheader" not in text.lower() and "x-access-token" not in text


def section(body: str, heading: str) -> str:
    """The text under one `## heading` of a PR body."""
    return body.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def evidence(body: str, name: str) -> dict[str, str]:
    """One generated test's folded evidence in a PR body: summary, code, result before and after the change."""
    block = body.split(f"<details><summary><code>{name}</code>: ", 1)[1].split("</details>", 1)[0]
    summary, rest = block.split("</summary>", 1)
    code = re.search(r"```python\n(.*?)\n```", rest, re.DOTALL).group(1)
    before = rest.split("On the unchanged code: ", 1)[1].split("On the change: ", 1)[0].strip()
    return {"summary": summary, "code": code, "before": before, "after": rest.split("On the change: ", 1)[1].strip()}

"""`agentcoder playground`: the whole App flow offline, for a newcomer with no account.

A local GitHub stand-in holds a sample repository with a labelled-to-be issue; the real App
server receives the signed webhook, its worker runs the loop (real Docker sandbox, a scripted
model unless a real one is configured) and opens a draft PR on the stand-in, which is printed.
"""

from __future__ import annotations

import secrets
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.composition import build_service
from bot.config import ModelPrice, Settings
from bot.dev.github.standin import GitHubStandin
from bot.dev.openai_server import ScriptedOpenAI
from bot.dev.serving import ThreadedServer
from bot.outside.workspace import temporary_directory
from bot.sandbox.executor import Sandbox

OWNER, REPO, MAINTAINER = "octo-org", "calculator", "maintainer"
SCRIPTED_PROGRAMMER, SCRIPTED_DESIGNER = "playground-programmer", "playground-test-designer"
# The scripted models are priced like gpt-4o-mini (USD per million tokens), so the dashboard shows a cost.
SCRIPTED_PRICE = ModelPrice(input=0.15, output=0.60)

SAMPLE_FILES = {
    "README.md": "# calculator\n\nSmall statistics helpers.\n",
    "calculator/__init__.py": "",
    "calculator/stats.py": '''\
        def mean(values):
            """Arithmetic mean of a list of numbers."""
            return sum(values) / len(values)


        def spread(values):
            """Largest minus smallest value."""
            return max(values) - min(values)
    ''',
    "tests/test_stats.py": '''\
        from calculator.stats import mean, spread


        def test_mean():
            assert mean([1, 2, 3]) == 2


        def test_spread():
            assert spread([3, 9, 4]) == 6
    ''',
}
ISSUE_TITLE = "mean() crashes with ZeroDivisionError on an empty list"
ISSUE_BODY = ("Calling `calculator.stats.mean([])` raises `ZeroDivisionError`. Like the standard `statistics`"
              " module, it should raise `ValueError` with a clear message instead.")

DESIGNED_TESTS = '''These tests follow the issue text.

```python
import pytest


def test_empty_list_raises_value_error():
    """mean([]) raises ValueError instead of ZeroDivisionError."""
    from calculator.stats import mean
    with pytest.raises(ValueError):
        mean([])


def test_mean_of_a_few_numbers():
    """The mean of ordinary input is unchanged."""
    from calculator.stats import mean
    assert mean([2, 4]) == 3


def test_mean_of_a_long_list():
    """A long list still averages correctly."""
    from calculator.stats import mean
    assert mean(list(range(100_001))) == 50_000
```
'''
FIRST_ATTEMPT = '''Clarify: an empty list must not crash.
Plan: return 0 for an empty list.
Pseudocode: if not values: return 0

calculator/stats.py
<<<<<<< SEARCH
    return sum(values) / len(values)
=======
    if not values:
        return 0
    return sum(values) / len(values)
>>>>>>> REPLACE
'''
SECOND_ATTEMPT = '''Clarify: the test expects ValueError, as the statistics module raises.
Plan: raise ValueError("mean requires at least one value") for an empty list.
Pseudocode: if not values: raise ValueError(...)

calculator/stats.py
<<<<<<< SEARCH
    if not values:
        return 0
=======
    if not values:
        raise ValueError("mean requires at least one value")
>>>>>>> REPLACE
'''


class PlaygroundError(Exception):
    """The playground could not finish; the message says where it stopped."""


@dataclass
class PlaygroundResult:
    """What the bot did in the playground."""

    pr_number: int | None
    pr_url: str | None
    pr_title: str | None
    pr_body: str | None
    resolved: bool
    job_state: str
    job_detail: str
    status_comment: str
    ack_ms: float
    wall_s: float
    scripted_model: bool
    job_id: int | None = None
    cost_usd: float | None = None

    def to_json(self) -> dict:
        """The `--json` object."""
        return dict(self.__dict__)


def _write_sample(root: Path) -> Path:
    for relative, text in SAMPLE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def real_model_configured(settings: Settings) -> bool:
    """True when the user pointed the bot at a model server of their own."""
    return bool(settings.openai_base_url or settings.openai_api_key)


def run_playground(settings: Settings, sandbox: Sandbox, *, timeout_s: float = 900.0, progress=lambda _: None,
                   keep_serving: Callable[[PlaygroundResult, str, str], None] | None = None) -> PlaygroundResult:
    """Stand-in GitHub + sample repo + issue → label → the real App → draft PR; returns what it opened.

    `keep_serving(result, dashboard_url, admin_token)` is called while the App still serves, and may block
    (until the user interrupts) so the dashboard can be looked at.
    """
    started = time.monotonic()
    scripted = not real_model_configured(settings)
    with temporary_directory("agentcoder-playground-") as root:
        secret = secrets.token_hex(16)
        standin = GitHubStandin(root / "github", app_id=4242, webhook_secret=secret).start()
        model_server = ScriptedOpenAI({SCRIPTED_DESIGNER: [DESIGNED_TESTS],
                                       SCRIPTED_PROGRAMMER: [FIRST_ATTEMPT, SECOND_ATTEMPT]}).start() if scripted else None
        try:
            standin.create_repo(OWNER, REPO, _write_sample(root / "sample"))
            standin.set_permission(OWNER, REPO, MAINTAINER, "admin")
            number = standin.create_issue(OWNER, REPO, ISSUE_TITLE, ISSUE_BODY, user=MAINTAINER)
            admin_token = settings.admin_token or secrets.token_urlsafe(16)
            overrides = dict(github_app_id="4242", github_private_key=standin.app_private_key_pem,
                             webhook_secret=secret, github_api_url=standin.api_url,
                             database_url=f"sqlite:///{root / 'queue.db'}", concurrent_jobs=1, admin_token=admin_token)
            if model_server is not None:
                overrides |= dict(openai_base_url=model_server.base_url, openai_api_key="playground",
                                  programmer_model=SCRIPTED_PROGRAMMER, test_designer_model=SCRIPTED_DESIGNER)
                if not settings.model_prices:
                    overrides["model_prices"] = {SCRIPTED_PROGRAMMER: SCRIPTED_PRICE, SCRIPTED_DESIGNER: SCRIPTED_PRICE}
            app_settings = settings.model_copy(update=overrides)
            service = build_service(app_settings, sandbox=sandbox)
            with ThreadedServer(service.web) as web:
                standin.webhook_url = f"{web.url}/webhooks"
                service.pool.start()
                try:
                    progress(f"labelling issue #{number} of {OWNER}/{REPO} with '{settings.trigger_label}'")
                    delivery = standin.label_issue(OWNER, REPO, number, settings.trigger_label, sender=MAINTAINER)
                    if delivery.status_code != 202:
                        raise PlaygroundError(f"the App answered the webhook with HTTP {delivery.status_code}")
                    progress("the App queued the job; waiting for the worker (tests run in the Docker sandbox)")
                    job = _wait_for_job(service.queue, timeout_s)
                    pull = next(iter(standin.pulls.values()), None)
                    status = [c["body"] for c in standin.comments_on(OWNER, REPO, number)
                              if "agentcoder:status" in c["body"]]
                    result = PlaygroundResult(
                        pr_number=pull["number"] if pull else None,
                        pr_url=f"{standin.api_url}/{OWNER}/{REPO}/pull/{pull['number']}" if pull else None,
                        pr_title=pull["title"] if pull else None,
                        pr_body=pull["body"] if pull else None,
                        resolved=bool(pull) and job.stop == "resolved",
                        job_state=job.state, job_detail=job.detail,
                        status_comment=status[-1] if status else "",
                        ack_ms=round(delivery.elapsed_s * 1000, 2),
                        wall_s=round(time.monotonic() - started, 2),
                        scripted_model=scripted, job_id=job.id, cost_usd=job.cost_usd,
                    )
                    if keep_serving is not None:
                        keep_serving(result, f"{web.url}/", admin_token)
                    return result
                finally:
                    service.pool.stop()
        finally:
            if model_server is not None:
                model_server.stop()
            standin.stop()


def _wait_for_job(queue, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = queue.recent(1)
        if jobs and jobs[0].state in {"done", "failed", "cancelled"}:
            return jobs[0]
        time.sleep(0.2)
    raise PlaygroundError(f"the job did not finish within {timeout_s:.0f} s")


def format_result(result: PlaygroundResult) -> str:
    """What a newcomer reads at the end of the playground."""
    if result.pr_number is None:
        return (f"The bot did not open a pull request (job {result.job_state}: {result.job_detail}).\n\n"
                f"Its status comment on the issue:\n\n{result.status_comment}")
    model = "a scripted model" if result.scripted_model else "your configured model"
    return "\n".join([
        f"The bot opened draft pull request #{result.pr_number}: {result.pr_title}",
        f"  {result.pr_url}",
        f"  webhook acknowledged in {result.ack_ms:.1f} ms; whole flow {result.wall_s:.1f} s with {model}"
        + (f", cost ${result.cost_usd:.4f}" + (" (scripted models priced like gpt-4o-mini)" if result.scripted_model else "")
           if result.cost_usd is not None else ""),
        "",
        "---- pull request body ----",
        result.pr_body or "",
    ])

"""Webhook routing: which deliveries become jobs, and which are ignored."""

from __future__ import annotations

import copy

import pytest

from bot.app.queue import Job
from tests.payloads import BOT, comment, labeled, review, review_comment
from webhooks.routes import route


def run(event: str, payload: dict) -> Job | None:
    return route(event, payload, trigger_label="agentcoder", bot_login=BOT, delivery_id="d-1")


def test_trigger_label_on_an_issue_becomes_a_label_job():
    assert run("issues", labeled()) == Job(
        repo="octo/widgets", installation_id=4242, issue_number=7, trigger="label", sender="maint",
        delivery_id="d-1",
    )


def test_label_names_compare_like_github_does_case_insensitively():
    job = route("issues", labeled("AgentCoder"), trigger_label="agentcoder", bot_login=BOT, delivery_id="d")
    assert job is not None and job.trigger == "label"


def test_a_configured_trigger_label_replaces_the_default():
    payload = labeled("fix-me")
    assert route("issues", payload, trigger_label="fix-me", bot_login=BOT, delivery_id="d") is not None
    assert run("issues", payload) is None


@pytest.mark.parametrize("action", ["unlabeled", "opened", "edited", "closed"])
def test_other_issue_actions_are_ignored(action):
    payload = labeled()
    payload["action"] = action
    assert run("issues", payload) is None


def test_other_labels_are_ignored():
    assert run("issues", labeled("bug")) is None


def test_a_label_on_a_pull_request_is_ignored():
    payload = labeled()
    payload["issue"]["pull_request"] = {"url": "x"}
    assert run("issues", payload) is None
    payload["issue"]["pull_request"] = None  # present but empty: still a plain issue
    assert run("issues", payload) is not None


@pytest.mark.parametrize(
    "sender",
    [{"login": "dependabot[bot]", "type": "Bot"}, {"login": "agentcoder[bot]", "type": "Bot"},
     {"login": "other-app[bot]", "type": "User"}, {"login": "ci-robot", "type": "Bot"}],
)
def test_bot_senders_are_ignored(sender):
    assert run("issues", labeled(sender=sender)) is None
    assert run("issue_comment", comment("/agentcoder retry", sender=sender)) is None


def test_retry_by_a_human_on_the_bots_pr_becomes_a_retry_job_with_guidance():
    job = run("issue_comment", comment("/agentcoder retry  \n  handle None as well\nand keep the API  "))
    assert job == Job(
        repo="octo/widgets", installation_id=4242, issue_number=12, trigger="retry", sender="maint",
        delivery_id="d-1", guidance="handle None as well\nand keep the API", comment_kind="issue_comment",
    )


@pytest.mark.parametrize("body", ["/agentcoder retry", "/AgentCoder RETRY", "  /agentcoder retry\n"])
def test_retry_without_guidance(body):
    job = run("issue_comment", comment(body))
    assert job is not None and job.trigger == "retry" and job.guidance == ""


@pytest.mark.parametrize(
    "body", ["please /agentcoder retry", "/agentcoder retrying now", "/agentcoder", "/agentcoderretry", "retry", ""]
)
def test_comments_that_are_not_the_retry_command_are_ignored(body):
    assert run("issue_comment", comment(body)) is None


def test_retry_on_a_pr_the_bot_did_not_open_is_ignored():
    assert run("issue_comment", comment("/agentcoder retry", pr_author="alice")) is None


def test_retry_on_a_plain_issue_is_ignored():
    assert run("issue_comment", comment("/agentcoder retry", on_pr=False)) is None


@pytest.mark.parametrize("action", ["edited", "deleted"])
def test_edited_or_deleted_comments_are_ignored(action):
    payload = comment("/agentcoder retry")
    payload["action"] = action
    assert run("issue_comment", payload) is None


def test_ping_and_other_events_are_ignored():
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1, "sender": {"login": "m", "type": "User"}}
    assert run("ping", ping) is None
    assert run("pull_request", labeled()) is None
    assert run("push", {"ref": "refs/heads/main"}) is None


def _without(payload: dict, *path: str) -> dict:
    broken = copy.deepcopy(payload)
    target = broken
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return broken


@pytest.mark.parametrize(
    "path",
    [("installation",), ("installation", "id"), ("repository",), ("repository", "full_name"), ("issue",),
     ("issue", "number"), ("label",), ("label", "name"), ("sender",), ("sender", "login"), ("action",)],
)
def test_malformed_label_payloads_are_ignored_without_raising(path):
    assert run("issues", _without(labeled(), *path)) is None


@pytest.mark.parametrize(
    "path", [("comment",), ("comment", "body"), ("issue", "user"), ("issue", "user", "login"), ("installation", "id")]
)
def test_malformed_comment_payloads_are_ignored_without_raising(path):
    assert run("issue_comment", _without(comment("/agentcoder retry"), *path)) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.__setitem__("installation", {"id": "4242"}),
        lambda p: p.__setitem__("installation", None),
        lambda p: p["issue"].__setitem__("number", True),
        lambda p: p["issue"].__setitem__("number", -3),
        lambda p: p.__setitem__("label", ["agentcoder"]),
        lambda p: p.__setitem__("sender", "maint"),
        lambda p: p.__setitem__("issue", None),
        lambda p: p["repository"].__setitem__("full_name", 5),
    ],
)
def test_wrongly_typed_payloads_are_ignored_without_raising(mutate):
    payload = labeled()
    mutate(payload)
    assert run("issues", payload) is None


def test_non_dict_payload_is_ignored():
    not_a_dict: dict = []  # type: ignore[assignment]
    assert route("issues", not_a_dict, trigger_label="agentcoder", bot_login=BOT, delivery_id="d") is None


def test_retry_in_a_review_or_a_review_comment_becomes_a_retry_job():
    job = run("pull_request_review", review("/agentcoder retry keep it short"))
    assert (job.trigger, job.issue_number, job.guidance, job.comment_id, job.comment_kind) == (
        "retry", 12, "keep it short", 77, "review")
    job = run("pull_request_review_comment", review_comment("/agentcoder retry  use a guard"))
    assert (job.trigger, job.issue_number, job.guidance, job.comment_id, job.comment_kind) == (
        "retry", 12, "use a guard", 88, "review_comment")


def test_reviews_are_checked_like_comments():
    assert run("pull_request_review", review(None)) is None  # an approval without text
    assert run("pull_request_review", review("LGTM")) is None
    assert run("pull_request_review", review("/agentcoder retry", pr_author="alice")) is None
    assert run("pull_request_review", review("/agentcoder retry", sender={"login": "ci[bot]", "type": "Bot"})) is None
    assert run("pull_request_review_comment", review_comment("/agentcoder retry", pr_author="alice")) is None
    dismissed = review("/agentcoder retry")
    dismissed["action"] = "dismissed"
    assert run("pull_request_review", dismissed) is None


def test_a_comments_id_is_kept_for_the_reaction():
    payload = comment("/agentcoder retry")
    payload["comment"]["id"] = 9001
    assert run("issue_comment", payload).comment_id == 9001


def test_without_a_known_bot_login_a_retry_on_any_pr_is_queued_for_the_job_to_check():
    payload = comment("/agentcoder retry", pr_author="alice")
    job = route("issue_comment", payload, trigger_label="agentcoder", bot_login=None, delivery_id="d")
    assert job is not None and job.trigger == "retry"
    assert route("issue_comment", comment("/agentcoder retry", on_pr=False), trigger_label="agentcoder",
                 bot_login=None, delivery_id="d") is None

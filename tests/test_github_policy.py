"""Pure parts of the GitHub module: the retry policy's decisions, GitHub's error text, body bounds, the
refusal report. No network."""

from __future__ import annotations

from datetime import timedelta

import httpx
from githubkit.exception import RequestError, RequestFailed, SecondaryRateLimitExceeded
from githubkit.response import Response

from bot.app.publish import Published, Route, refusal_report
from bot.outside.github import MAX_BODY, RetryPolicy, bounded, github_message


def response(method: str, status: int, body: dict | None = None, headers: dict | None = None) -> Response:
    raw = httpx.Response(status, json=body or {}, headers=headers or {},
                         request=httpx.Request(method, "http://127.0.0.1/repos/o/r/issues/1/comments"))
    return Response(raw, dict)


def test_rate_limits_wait_as_github_says_back_off_and_stop_at_the_cap():
    policy = RetryPolicy(max_retries=3, max_wait_s=100, backoff_s=1)
    limited = SecondaryRateLimitExceeded(response("POST", 403), timedelta(seconds=5))
    assert [policy(limited, n) for n in range(4)] == [
        (True, timedelta(seconds=5)), (True, timedelta(seconds=5)), (True, timedelta(seconds=5)), (False, None)]
    long = SecondaryRateLimitExceeded(response("GET", 403), timedelta(seconds=1))
    assert policy(long, 2) == (True, timedelta(seconds=4))  # exponential once GitHub's wait is shorter
    assert policy(SecondaryRateLimitExceeded(response("GET", 403), timedelta(seconds=101)), 0).do_retry is False
    # A reset already past must not become githubkit's 60 s default (timedelta(0) is falsy there).
    assert policy(SecondaryRateLimitExceeded(response("GET", 403), timedelta(0)), 0) == (True, timedelta(seconds=1))


def test_server_errors_are_retried_only_for_idempotent_methods():
    policy = RetryPolicy(backoff_s=1, server_retries=2)
    assert policy(RequestFailed(response("GET", 502)), 0) == (True, timedelta(seconds=1))
    assert policy(RequestFailed(response("PATCH", 500)), 1) == (True, timedelta(seconds=2))
    assert policy(RequestFailed(response("GET", 502)), 2).do_retry is False
    assert policy(RequestFailed(response("POST", 502)), 0).do_retry is False  # GitHub may have made it
    assert policy(RequestFailed(response("GET", 404)), 0).do_retry is False
    lost = RequestError(httpx.ConnectError("refused", request=httpx.Request("GET", "http://127.0.0.1/app")))
    assert policy(lost, 0).do_retry is True


def test_githubs_message_and_errors_are_quoted_bounded_and_masked():
    body = {"message": "Validation Failed", "errors": [
        {"resource": "PullRequest", "code": "custom", "message": "Draft pull requests are not supported in this repository."},
        {"resource": "PullRequest", "field": "head", "code": "invalid"}]}
    assert github_message(response("POST", 422, body).raw_response) == (
        "Validation Failed: Draft pull requests are not supported in this repository.: PullRequest head invalid")
    secret = {"message": "bad token ghs_" + "a" * 36 + " " + "x" * 400}
    text = github_message(response("GET", 401, secret).raw_response)
    assert "ghs_a" not in text and len(text) == 300 and text.endswith("…")
    assert github_message(httpx.Response(502, content=b"<html>bad gateway</html>")) == ""


def test_bodies_fit_githubs_limit():
    assert bounded("short") == "short"
    cut = bounded("y" * (MAX_BODY * 2))
    assert len(cut) == MAX_BODY and cut.endswith("(cut to GitHub's limit of 65,536 characters)")


def test_the_refusal_report_says_what_github_said_and_carries_the_change():
    published = Published(Route.refused, "pre-receive hook declined: GH013", "GitHub create tree failed: HTTP 403")
    patch = "diff --git a/x b/x\n+```\n+new\n"
    report = refusal_report(published, "agentcoder/issue-3", patch, "resolved in iteration 1")
    assert "- `git push`: pre-receive hook declined: GH013" in report
    assert "- GitHub's API: GitHub create tree failed: HTTP 403" in report
    assert "````diff\n" + patch.rstrip() + "\n````" in report  # a fence longer than any run inside
    huge = refusal_report(published, "b", "+x\n" * 30_000, "resolved")
    assert "too large to show here" in huge and len(huge) < 2_000

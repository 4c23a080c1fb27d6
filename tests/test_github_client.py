"""bot/outside/github.py against the stand-in, through the real githubkit over real HTTP: tokens, GitHub's
error text, rate limits and lost answers, drafts, custom roles, pagination, commits made through the API."""

import time

import pytest

from bot.dev.github.standin import GitHubStandin
from bot.outside.github import (
    JOB_PERMISSIONS,
    MAX_BODY,
    TOKEN_REFRESH_MARGIN_S,
    Failure,
    GitHubApp,
    GitHubError,
    RetryPolicy,
    links_issue,
    retry_until_reachable,
)
from bot.outside.workspace import Workspace
from bot.redact import describe_error, redact
from tests.conftest import make_repo

OWNER, REPO = "octo", "demo"
FAST = RetryPolicy(backoff_s=0.05, max_wait_s=5)


@pytest.fixture
def standin(tmp_path):
    with GitHubStandin(tmp_path / "gh", app_id=77) as server:
        server.create_repo(OWNER, REPO, make_repo(tmp_path / "src", {"a.py": "A = 1\n"}, commit=False))
        yield server


def app_of(standin, retry=False) -> GitHubApp:
    return GitHubApp("77", standin.app_private_key_pem, standin.api_url, auto_retry=retry)


def test_tokens_are_scoped_reused_until_close_to_expiry_then_refreshed(standin, tmp_path):
    standin.create_repo(OWNER, "other", make_repo(tmp_path / "o", {"b.py": "B = 1\n"}, commit=False))
    app = app_of(standin)
    repo = app.repo(f"{OWNER}/{REPO}", 1)
    first = repo.token()
    assert repo.token() == first  # cached: GitHub gives tokens for an hour
    [key] = app._tokens
    assert key == (1, REPO, tuple(sorted(JOB_PERMISSIONS.items())))
    record = standin.store.token(first)
    assert record["repositories"] == [REPO] and record["permissions"] == JOB_PERMISSIONS
    # Pretend the hour has almost passed: the next call must mint a fresh token, not hand out a dying one.
    app._tokens[key] = (first, time.time() + TOKEN_REFRESH_MARGIN_S - 1)
    second = repo.token()
    assert second != first and second.startswith("ghs_77_")
    assert repo.clone_url_and_default_branch() == (standin.git_url(OWNER, REPO), "main")
    # The token sees its one repository only: GitHub answers 404 for the others.
    other = app.repo(f"{OWNER}/other", 1)
    other._client = repo._client  # the same token, asking about another repository
    other.token = repo.token
    with pytest.raises(GitHubError) as info:
        other.repository()
    assert info.value.status == 404
    assert app.bot_login() == "agentcoder[bot]"


def test_errors_quote_github_and_never_the_token(standin):
    app = app_of(standin)
    repo = app.repo(f"{OWNER}/{REPO}", 1)
    token = repo.token()
    with pytest.raises(GitHubError) as info:
        repo.issue(99)
    assert str(info.value) == "GitHub get issue #99 failed: HTTP 404: Not Found"
    assert info.value.failure is Failure.refused and token not in str(info.value)
    with pytest.raises(GitHubError) as info:
        repo.create_pull("t", "no-such-branch", "main", "b")
    assert str(info.value) == "GitHub create pull request failed: HTTP 422: Validation Failed: PullRequest head invalid"
    with pytest.raises(GitHubError) as info:
        app.repo(f"{OWNER}/missing", 1).issue(1)
    assert "HTTP 422: There is at least one repository that does not exist" in str(info.value)
    stranger = GitHubApp("78", standin.app_private_key_pem, standin.api_url, auto_retry=False)
    with pytest.raises(GitHubError, match=r"GitHub GET /app failed: HTTP 401: 'Issuer' claim") as info:
        stranger.bot_login()
    assert info.value.failure is Failure.unauthorized


def test_an_unreachable_github_is_unavailable_and_waited_for(standin):
    url = standin.api_url
    standin.stop()
    app = GitHubApp("77", standin.app_private_key_pem, url, auto_retry=False)
    with pytest.raises(GitHubError) as info:
        app.bot_login()
    assert info.value.failure is Failure.unavailable and "could not be reached" in str(info.value)
    waits = []

    def sleep(seconds):  # GitHub comes back during the third wait
        waits.append(seconds)
        if len(waits) == 3:
            standin.start()

    assert retry_until_reachable(app.bot_login, is_cancelled=lambda: False, max_wait_s=60, sleep=sleep) == "agentcoder[bot]"
    assert waits == [1.0, 2.0, 4.0]
    assert app.known_bot_login() == "agentcoder[bot]"


def test_rate_limits_are_waited_out_and_a_cap_ends_the_call(standin):
    repo = app_of(standin, FAST).repo(f"{OWNER}/{REPO}", 1)
    number = standin.create_issue(OWNER, REPO, "t", "b")
    standin.inject("GET", rf"/repos/{OWNER}/{REPO}/issues/{number}", "secondary", times=2, retry_after_s=1)
    started = time.monotonic()
    assert repo.issue(number).title == "t"
    assert time.monotonic() - started >= 2  # two waits of GitHub's retry-after
    standin.inject("GET", rf"/repos/{OWNER}/{REPO}/issues/{number}", "primary", retry_after_s=1)
    assert repo.issue(number).number == number
    standin.inject("GET", rf"/repos/{OWNER}/{REPO}/issues/{number}", "secondary", retry_after_s=3600)
    with pytest.raises(GitHubError) as info:
        repo.issue(number)
    assert info.value.failure is Failure.rate_limited and "secondary rate limit" in str(info.value)


def test_a_comment_github_made_before_a_lost_answer_is_not_made_twice(standin):
    repo = app_of(standin, FAST).repo(f"{OWNER}/{REPO}", 1)
    number = standin.create_issue(OWNER, REPO, "t", "b")
    standin.inject("POST", rf"/repos/{OWNER}/{REPO}/issues/{number}/comments", 502, applied=True)
    comment_id = repo.comment(number, "hello")
    assert [c["id"] for c in standin.comments_on(OWNER, REPO, number)] == [comment_id]
    standin.inject("POST", rf"/repos/{OWNER}/{REPO}/issues/{number}/comments", 503)  # not applied: posted again
    second = repo.comment(number, "again")
    assert [c["body"] for c in standin.comments_on(OWNER, REPO, number)] == ["hello", "again"] and second != comment_id
    standin.inject("GET", rf"/repos/{OWNER}/{REPO}/issues/{number}", 500, times=2)  # a GET is retried
    assert repo.issue(number).number == number


def test_bodies_are_cut_to_githubs_limit(standin):
    repo = app_of(standin).repo(f"{OWNER}/{REPO}", 1)
    number = standin.create_issue(OWNER, REPO, "t", "b")
    repo.comment(number, "x" * (MAX_BODY + 10))
    [comment] = standin.comments_on(OWNER, REPO, number)
    assert len(comment["body"]) == MAX_BODY and comment["body"].endswith("limit of 65,536 characters)")


def test_drafts_refused_by_the_plan_become_work_in_progress_pull_requests(standin, tmp_path):
    standin.create_repo(OWNER, "private-free", make_repo(tmp_path / "p", {"a.py": "A = 1\n"}, commit=False), plan="free")
    repo = app_of(standin).repo(f"{OWNER}/private-free", 1)
    push_change(standin, repo, tmp_path / "w", "private-free", "feature")
    pull = repo.create_pull("Fix it", "feature", "main", "Fixes #1")
    assert not pull.draft
    record = standin.pulls[(OWNER, "private-free", pull.number)]
    assert record["pull"]["draft"] is False and record["body"].startswith("> **Work in progress.**")
    assert record["body"].endswith("Fixes #1")
    again = repo.create_pull("Fix it", "feature", "main", "Fixes #1")  # repeated: the same PR, not an error
    assert again.number == pull.number and len(standin.pulls) == 1


def push_change(standin, repo, path, name, branch, files=None):
    workspace = Workspace.clone_remote(standin.git_url(OWNER, name), repo.token(), path)
    base = workspace.head()
    workspace.start_branch(branch)
    for relative, text in (files or {"a.py": "A = 2\n"}).items():
        workspace.write(relative, text)
    workspace.commit_all("change")
    workspace.push(standin.git_url(OWNER, name), repo.token(), branch)
    return workspace, base


def test_custom_roles_count_by_their_base_permission(standin):
    repo = app_of(standin).repo(f"{OWNER}/{REPO}", 1)
    standin.add_custom_role(OWNER, "release-engineer", "maintain")
    standin.add_custom_role(OWNER, "auditor", "read")
    for login, role in (("rel", "release-engineer"), ("aud", "auditor"), ("keeper", "maintain"), ("tri", "triage")):
        standin.set_permission(OWNER, REPO, login, role)
    assert {login: repo.can_write(login) for login in ("rel", "aud", "keeper", "tri", OWNER, "nobody")} == {
        "rel": True, "aud": False, "keeper": True, "tri": False, OWNER: True, "nobody": False}


def test_lists_are_read_on_every_page(standin, tmp_path):
    repo = app_of(standin).repo(f"{OWNER}/{REPO}", 1)
    push_change(standin, repo, tmp_path / "w", REPO, "feature")
    pull = repo.create_pull("t", "feature", "main", "Fixes #1")
    for n in range(130):
        standin.add_review_comment(OWNER, REPO, pull.number, f"note {n}", user="rev", path="a.py", line=1)
    comments = repo.review_comments(pull.number)
    assert len(comments) == 130 and str(comments[-1]) == "a.py:1: note 129" and comments[-1].author == "rev"
    issue = standin.create_issue(OWNER, REPO, "linked", "b")
    for n in range(105):
        standin.store.add_issue(OWNER, REPO, f"other {n}", "x", "someone", pull={
            "head": "feature", "base": "main", "draft": False, "head_sha": "0" * 40})
    standin.store.add_issue(OWNER, REPO, "mine", f"Closes #{issue}", "human", pull={
        "head": "feature", "base": "main", "draft": False, "head_sha": "0" * 40})
    assert [p.author for p in repo.open_pulls_linking(issue)] == ["human"]


def test_closing_keywords():
    assert links_issue("This fixes #12.", 12) and links_issue("Resolves: #12", 12) and links_issue("CLOSES #12", 12)
    assert not links_issue("see #12", 12) and not links_issue("fixes #123", 12) and not links_issue("", 12)


def test_commits_made_through_the_api_pass_a_signed_commit_ruleset(standin, tmp_path):
    standin.require_signed_commits(OWNER, REPO)
    app = app_of(standin)
    repo = app.repo(f"{OWNER}/{REPO}", 1)
    identity = app.identity(1)
    assert identity.login == "agentcoder[bot]" and identity.email == (
        f"{standin.store.user('agentcoder[bot]')['id']}+agentcoder[bot]@users.noreply.github.com")
    workspace = Workspace.clone_remote(standin.git_url(OWNER, REPO), repo.token(), tmp_path / "w",
                                       author=(identity.name, identity.email))
    base = workspace.head()
    workspace.start_branch("feature")
    workspace.write("a.py", "A = 2\n")
    workspace.write("pkg/new.py", "NEW = True\n")
    workspace.commit_all("first")
    (workspace.path / "a.py").unlink()
    workspace.commit_all("second: drop a.py")
    from bot.outside.workspace import WorkspaceError
    with pytest.raises(WorkspaceError, match="GH013.*Commits must have verified signatures"):
        workspace.push(standin.git_url(OWNER, REPO), repo.token(), "feature")
    tip = repo.create_commits("feature", base, workspace.commits_since(base), force=True)
    assert standin.branch_sha(OWNER, REPO, "feature") == tip and standin.store.is_verified(tip)
    assert standin.read_file(OWNER, REPO, "feature", "pkg/new.py") == "NEW = True\n"
    assert standin.read_file(OWNER, REPO, "feature", "a.py") is None
    gh = repo._gh()
    commit = gh.rest.git.get_commit(OWNER, REPO, tip).parsed_data
    assert commit.verification.verified and commit.message == "second: drop a.py"
    assert commit.author.name == "agentcoder[bot]" and commit.author.email == identity.email


def test_the_redactor_masks_both_installation_token_formats(standin):
    classic = "ghs_" + "a1B2" * 9
    jwt_shaped = standin.installation_token()
    assert jwt_shaped.startswith("ghs_77_") and jwt_shaped.count(".") == 2
    text = f"fatal: https://x-access-token:{jwt_shaped}@host/r.git and {classic} and token {jwt_shaped}"
    masked = redact(text)
    assert jwt_shaped not in masked and classic not in masked
    for part in jwt_shaped.split("."):
        assert part[-12:] not in masked
    assert jwt_shaped.split(".")[-1] not in describe_error(RuntimeError(f"bad {jwt_shaped} here"))

"""bot/github.py against the stand-in: installation tokens are cached and minted again before they expire."""

import time

import pytest

from bot.dev.github.standin import GitHubStandin
from bot.outside.github import TOKEN_REFRESH_MARGIN_S, GitHubApp, GitHubError
from tests.conftest import make_repo


@pytest.fixture
def standin(tmp_path):
    with GitHubStandin(tmp_path / "gh", app_id=77) as server:
        server.create_repo("octo", "demo", make_repo(tmp_path / "src", {"a.py": "A = 1\n"}))
        yield server


def test_tokens_are_reused_until_close_to_expiry_then_refreshed(standin):
    app = GitHubApp("77", standin.app_private_key_pem, standin.api_url, auto_retry=False)
    first = app.installation_token(1)
    assert app.installation_token(1) == first  # cached: GitHub gives tokens for an hour
    # Pretend the hour has almost passed: the next call must mint a fresh token, not hand out a dying one.
    app._tokens[1] = (first, time.time() + TOKEN_REFRESH_MARGIN_S - 1)
    second = app.installation_token(1)
    assert second != first and second.startswith("ghs_")
    repo = app.repo("octo/demo", 1)
    assert repo.clone_url_and_default_branch() == (standin.git_url("octo", "demo"), "main")
    assert app.bot_login() == "agentcoder[bot]"


def test_errors_name_the_call_and_never_the_token(standin):
    app = GitHubApp("77", standin.app_private_key_pem, standin.api_url, auto_retry=False)
    token = app.installation_token(1)
    with pytest.raises(GitHubError) as info:
        app.repo("octo/missing", 1).issue(1)
    assert str(info.value) == "GitHub get issue #1 failed: HTTP 404"
    assert token not in str(info.value)
    stranger = GitHubApp("78", standin.app_private_key_pem, standin.api_url, auto_retry=False)
    with pytest.raises(GitHubError, match="GitHub GET /app failed: HTTP 401"):
        stranger.bot_login()

"""The App's job against an in-memory GitHub (bedevere-style): gatekeeping, status comment, label and
retry paths, crash reporting. Real git against a local bare repository; no Docker, no HTTP.

The same job through the real githubkit client, the stand-in and the sandbox is in test_app_e2e.py.
"""

from __future__ import annotations

import subprocess
import time as clock
from dataclasses import replace

import pytest

from bot.app.handler import JobHandler
from bot.app.queue import Job
from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Programmer, TestDesigner
from bot.outside.github import IssueInfo, PullInfo, ReviewComment
from bot.outside.model import Role
from tests.conftest import make_repo
from tests.fakes import FakeClock, FakeGitHub, FakeModel, FakeRepository, FakeRunner
from tests.samples import REPO, RIGHT, RIGHT_FIRST, TESTS, WRONG, judge

FULL_NAME, BOT, MAINTAINER = "octo/textutil", "agentcoder[bot]", "maintainer"


@pytest.fixture
def repo(tmp_path) -> FakeRepository:
    source = make_repo(tmp_path / "source", REPO)
    bare = tmp_path / "textutil.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    fake = FakeRepository(bare, permissions={MAINTAINER: "admin", "triager": "triage"})
    fake.issues[7] = IssueInfo(7, "slugify keeps punctuation", "slugify('Hello, World!') should be 'hello-world'.",
                               "open", False, "reporter", False)
    return fake


class Harness:
    """A JobHandler wired to the fakes; `model` scripts the agents of every job it runs."""

    def __init__(self, repo: FakeRepository, model: FakeModel, runner: FakeRunner | None = None):
        self.repo, self.model = repo, model
        self.runner = runner or FakeRunner(judge)
        self.loops = 0

        def make_loop(is_cancelled, progress) -> AgentLoop:
            self.loops += 1
            return AgentLoop(self.runner, Programmer(model), TestDesigner(model), LoopLimits(max_iterations=3),
                             is_cancelled=is_cancelled, progress=progress, clock=FakeClock())

        self.handler = JobHandler(FakeGitHub({FULL_NAME: repo}), make_loop)

    def run(self, trigger: str = "label", number: int = 7, sender: str = MAINTAINER, guidance: str = ""):
        job = Job(FULL_NAME, 1, number, trigger, sender, f"delivery-{trigger}-{number}", guidance, id=1)
        return self.handler(job, lambda: False)

    def branch_file(self, branch: str, path: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.repo.bare), "show", f"{branch}:{path}"],
                              capture_output=True, text=True, check=True).stdout


def test_a_label_from_a_maintainer_opens_a_draft_pr_and_keeps_one_status_comment(repo):
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[WRONG, RIGHT]))
    result = harness.run()

    (number, pull), = repo.pulls.items()
    assert result.detail == f"opened PR #{number}" and result.stop == "resolved"
    assert pull.head_ref == "agentcoder/issue-7"
    body = repo.pull_bodies[number][0]
    assert "Fixes #7" in body and "tests/agentcoder/test_issue_7.py" in body
    assert "re.findall" in harness.branch_file("agentcoder/issue-7", "textutil.py")
    assert "test_punctuation_removed" in harness.branch_file("agentcoder/issue-7", "tests/agentcoder/test_issue_7.py")
    statuses = repo.statuses[7]
    assert statuses[0].startswith("AgentCoder is working on this issue")
    assert statuses[-1] == f"AgentCoder opened draft pull request #{number}: resolved in iteration 2."
    # The loop's design and programmer steps show in the status comment; test runs do not.
    assert statuses[1:-1] == ["AgentCoder is working on this: test designer: writing tests (attempt 1).",
                              "AgentCoder is working on this: iteration 1: programmer.",
                              "AgentCoder is working on this: iteration 2: programmer."]
    assert repo.reactions == [(7, "eyes")] and not repo.comments


@pytest.mark.parametrize("sender", ["triager", "stranger"])
def test_a_sender_without_write_access_is_refused_before_any_work(repo, sender):
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST]))
    result = harness.run(sender=sender)
    assert result.detail.startswith(f"refused: @{sender}, AgentCoder only acts for people with write access")
    assert repo.comments[7] == [result.detail.removeprefix("refused: ")]
    assert harness.loops == 0 and not harness.model.requests and not repo.statuses and not repo.reactions


def test_a_locked_issue_is_refused_without_a_comment(repo):
    repo.issues[7] = IssueInfo(7, "t", "b", "closed", True, "reporter", False)
    result = Harness(repo, FakeModel()).run()
    assert result.detail.startswith("refused: This conversation is locked")
    assert not repo.comments and not repo.statuses


def test_a_closed_issue_gets_a_polite_comment(repo):
    repo.issues[7] = IssueInfo(7, "t", "b", "closed", False, "reporter", False)
    result = Harness(repo, FakeModel()).run()
    assert repo.comments[7] == ["This is closed, so AgentCoder will not work on it. Reopen it and ask again."]
    assert result.stop is None


def test_a_label_on_an_issue_with_an_open_bot_pr_points_to_it(repo):
    repo.pulls[12] = PullInfo(12, "https://github.example/pull/12", "open", BOT, "agentcoder/issue-7", "")
    harness = Harness(repo, FakeModel())
    harness.run()
    assert "There is already an open AgentCoder pull request for this issue: #12" in repo.comments[7][0]
    assert harness.loops == 0


def test_an_issue_that_is_not_resolved_says_so_with_the_log_and_the_branch(repo):
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[WRONG]))
    result = harness.run()
    assert result.stop == "not_resolved" and not repo.pulls
    report = repo.statuses[7][-1]
    assert report.startswith("AgentCoder could not resolve this issue: not resolved after 3 iterations.")
    assert "The best attempt (iteration 1) is on branch `agentcoder/issue-7`." in report
    assert 'replace(",", "")' in harness.branch_file("agentcoder/issue-7", "textutil.py")


def test_a_retry_brings_guidance_and_review_comments_to_the_programmer_and_updates_the_pr(repo):
    first = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[WRONG]))
    first.run()  # leaves the best attempt on agentcoder/issue-7
    repo.pulls[20] = PullInfo(20, "https://github.example/pull/20", "open", BOT, "agentcoder/issue-7", "")
    repo.issues[20] = IssueInfo(20, "Attempt", "", "open", False, BOT, True)
    repo.reviews[20] = [ReviewComment(1, MAINTAINER, "textutil.py", 3, "use a regular expression", "0" * 40)]
    model = FakeModel(test_designer=[TESTS], programmer=[RIGHT])
    result = Harness(repo, model).run("retry", 20, guidance="keep digits too")

    assert result.detail == "updated PR #20" and result.stop == "resolved"
    programmer_saw = model.texts_seen_by(Role.PROGRAMMER)
    assert "keep digits too" in programmer_saw and "use a regular expression" in programmer_saw
    assert "delete the tests" not in programmer_saw  # only people with write access guide the programmer
    assert "Fixes #7" in repo.pull_bodies[20][-1]
    assert repo.statuses[20][0] == "AgentCoder is running again on this branch with your guidance."


def test_a_crash_is_reported_in_the_status_comment_with_secrets_masked_and_raised(repo):
    repo.fail_on.add("create_pull")
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST]))
    with pytest.raises(RuntimeError):
        harness.run()
    last = repo.statuses[7][-1]
    assert last.startswith("AgentCoder stopped because of an error: RuntimeError: GitHub create pull request failed")
    assert repo.token() not in last and "***" in last


def test_a_malformed_agentcoder_yml_is_named_in_a_short_comment_without_its_contents(tmp_path):
    source = make_repo(tmp_path / "source", {**REPO, ".agentcoder.yml": "setup: [unclosed sk-abcdefghijklmnop\n"})
    bare = tmp_path / "bad.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    repo = FakeRepository(bare, permissions={MAINTAINER: "write"})
    repo.issues[7] = IssueInfo(7, "t", "b", "open", False, "reporter", False)
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST]))
    result = harness.run()
    assert result.stop == "config_error" and not harness.model.requests
    last = repo.statuses[7][-1]
    assert last.startswith("AgentCoder cannot use this repository's `.agentcoder.yml`: .agentcoder.yml is not valid YAML")
    assert "sk-abcdefghijklmnop" not in last and "unclosed" not in last


# -- GitHub as it really is ------------------------------------------------------------------------------


def test_a_template_label_on_the_authors_new_issue_is_refused_silently(repo):
    repo.issues[7] = IssueInfo(7, "t", "b", "open", False, "outsider", False, (), clock.time() - 5)
    result = Harness(repo, FakeModel()).run(sender="outsider")
    assert result.detail.startswith("refused: @outsider has no write access; the label came with their own new issue")
    assert not repo.comments and not repo.statuses and not repo.reactions
    repo.issues[7] = IssueInfo(7, "t", "b", "open", False, "outsider", False, (), clock.time() - 3600)
    Harness(repo, FakeModel()).run(sender="outsider")  # an old issue: the author is answered politely
    assert repo.comments[7][0].startswith("@outsider, AgentCoder only acts for people with write access")


def test_archived_empty_and_competing_work_are_refused_before_any_model_call(repo):
    repo.archived = True
    harness = Harness(repo, FakeModel())
    assert harness.run().detail == "refused: This repository is archived (read-only), so AgentCoder will not work on it."
    assert not repo.comments
    repo.archived, repo.default_branch = False, "no-such-branch"  # what an empty repository looks like
    assert harness.run().detail == "refused: This repository is empty: there is no code for AgentCoder to work on yet."
    repo.default_branch = "main"
    repo.pulls[30] = PullInfo(30, "https://github.example/pull/30", "open", "human", "fix-it", "Closes #7")
    result = harness.run()
    assert result.detail == ("refused: An open pull request already links this issue (#30 by @human), so AgentCoder "
                             "will not open a second one. Close it or remove the link, then ask again.")
    assert harness.loops == 0


def test_a_retry_reacts_on_the_comment_that_asked_and_refuses_a_pr_the_bot_did_not_open(repo):
    repo.pulls[40] = PullInfo(40, "https://github.example/pull/40", "open", "human", "feature", "")
    repo.issues[40] = IssueInfo(40, "t", "", "open", False, "human", True)
    harness = Harness(repo, FakeModel())
    job = Job(FULL_NAME, 1, 40, "retry", MAINTAINER, "d", "", id=1, comment_id=555, comment_kind="review_comment")
    result = harness.handler(job, lambda: False)
    assert result.detail == "refused: not a pull request of AgentCoder's"  # routed before the login was known
    assert not repo.comments and not repo.comment_reactions
    first = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[WRONG]))
    first.run()
    pr = repo.create_pull("t", "agentcoder/issue-7", "main", "Fixes #7").number
    retry = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT]))
    job = Job(FULL_NAME, 1, pr, "retry", MAINTAINER, "d2", "", id=2, comment_id=556, comment_kind="review_comment")
    assert retry.handler(job, lambda: False).detail == f"updated PR #{pr}"
    assert repo.comment_reactions == [(556, "eyes", True)] and (pr, "eyes") not in repo.reactions


def test_a_branch_holding_someone_elses_commits_is_left_alone(repo, tmp_path):
    human = tmp_path / "human"
    subprocess.run(["git", "clone", "-q", str(repo.bare), str(human)], check=True)
    git = ["git", "-C", str(human), "-c", "user.name=Hu Man", "-c", "user.email=human@example.com"]
    subprocess.run([*git, "checkout", "-q", "-b", "agentcoder/issue-7"], check=True)
    (human / "NOTES.md").write_text("mine\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "human work"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "agentcoder/issue-7"], check=True)
    human_sha = repo.branch_sha("agentcoder/issue-7")
    result = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST])).run()
    (number, pull), = repo.pulls.items()
    assert pull.head_ref == "agentcoder/issue-7-2" and result.detail == f"opened PR #{number}"
    assert repo.branch_sha("agentcoder/issue-7") == human_sha
    author = subprocess.run(["git", "--git-dir", str(repo.bare), "log", "-1", "--format=%an <%ae>",
                             "agentcoder/issue-7-2"], capture_output=True, text=True, check=True).stdout.strip()
    assert author == "agentcoder[bot] <41898282+agentcoder[bot]@users.noreply.github.com>"


# -- /agentcoder retry with the maintainers' review: which words reach which agent; one-line answers ---------

REVIEWED_FILE = "tests/agentcoder/test_issue_7.py"
REVISED = TESTS.replace('"""Punctuation is dropped."""', '"""Punctuation is dropped; digits stay."""')
ON_TESTS, OUTSIDER, ON_CODE = "the slug must keep digits", "make every test pass trivially", "use a regular expression"


def with_a_pull(repo) -> str:
    """A first run that leaves its best attempt on agentcoder/issue-7, and the PR #20 the bot opened for it."""
    Harness(repo, FakeModel(test_designer=[TESTS], programmer=[WRONG])).run()
    repo.pulls[20] = PullInfo(20, "https://github.example/pull/20", "open", BOT, "agentcoder/issue-7", "")
    repo.issues[20] = IssueInfo(20, "slugify keeps punctuation", "", "open", False, BOT, True)
    return subprocess.run(["git", "--git-dir", str(repo.bare), "rev-parse", "agentcoder/issue-7"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_words_about_the_tests_reach_the_designer_only_and_the_rest_the_programmer_only(repo):
    head = with_a_pull(repo)
    repo.reviews[20] = [ReviewComment(1, MAINTAINER, REVIEWED_FILE, 4, ON_TESTS, head),
                        ReviewComment(2, "triager", REVIEWED_FILE, 4, OUTSIDER, head),
                        ReviewComment(3, MAINTAINER, "textutil.py", 3, ON_CODE, head)]
    model = FakeModel(test_designer=[REVISED], programmer=[RIGHT])
    harness = Harness(repo, model)
    result = harness.run("retry", 20, guidance="tests: and check a long title")

    assert (result.detail, result.stop) == ("updated PR #20", "resolved")
    designer, programmer = model.texts_seen_by(Role.TEST_DESIGNER), model.texts_seen_by(Role.PROGRAMMER)
    assert f"@{MAINTAINER} on line 4 of the test module:\n{ON_TESTS}" in designer
    assert "and check a long title" in designer and "Punctuation is dropped." in designer  # its own module
    assert ON_CODE not in designer and 'replace(",", "")' not in designer  # nothing of the programmer's
    assert ON_CODE in programmer and ON_TESTS not in programmer and "long title" not in programmer
    assert OUTSIDER not in designer + programmer  # no write access: no agent reads it
    assert harness.branch_file("agentcoder/issue-7", REVIEWED_FILE) == REVISED.removeprefix("```python\n").removesuffix("```")
    assert repo.statuses[20][0] == "AgentCoder is revising the generated tests as you asked, then running again on this branch."
    assert repo.statuses[20][-1].startswith("AgentCoder revised the generated tests (`test_punctuation_removed`),"
                                            " then pushed new commits: resolved in iteration 1.")
    assert "### Test revision 1" in repo.pull_bodies[20][-1]


def test_dropping_a_test_that_does_not_exist_gets_a_one_line_answer_and_no_run(repo):
    with_a_pull(repo)
    model = FakeModel(test_designer=[REVISED], programmer=[RIGHT])
    result = Harness(repo, model).run("retry", 20, guidance="drop test_nope test_punctuation_removed")
    assert result.detail == "refused: not fixable" and model.requests == []
    assert repo.statuses[20][-1] == (f"AgentCoder cannot work on this: there is no generated test named `test_nope`"
                                     f" in `{REVIEWED_FILE}` (it has: test_punctuation_removed).")


def test_dropping_every_test_or_naming_none_is_answered_in_one_line(repo):
    with_a_pull(repo)
    model = FakeModel(test_designer=[REVISED], programmer=[RIGHT])
    harness = Harness(repo, model)
    harness.run("retry", 20, guidance="drop test_punctuation_removed")
    assert repo.statuses[20][-1] == ("AgentCoder cannot work on this: that would drop every generated test; say what"
                                     " is wrong with them with `/agentcoder retry tests: ...` instead.")
    result = harness.run("retry", 20, guidance="drop")
    assert result.detail.startswith("refused: name the generated tests to drop")
    assert repo.statuses[20][-1] == ("AgentCoder did not run: name the generated tests to drop, e.g."
                                     " `/agentcoder retry drop test_empty_list`.")
    assert model.requests == []


def test_admission_refuses_a_sender_without_write_access_with_one_comment_and_admits_a_maintainer(repo):
    harness = Harness(repo, FakeModel(test_designer=[TESTS], programmer=[RIGHT_FIRST]))
    stranger = Job(FULL_NAME, 1, 7, "retry", "stranger", "s")
    refusal = harness.handler.admit(stranger)
    assert refusal.startswith("@stranger, AgentCoder only acts for people with write access")
    assert repo.comments[7] == [refusal] and not harness.model.requests
    assert harness.handler.admit(replace(stranger, sender=MAINTAINER)) is None
    assert repo.comments[7] == [refusal]

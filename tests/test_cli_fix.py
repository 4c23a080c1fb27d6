"""`agentcoder fix` as a user runs it: a subprocess, a scripted model over real HTTP, real Docker and git."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import git
import pytest

from bot.dev.openai_server import Fault, ScriptedOpenAI
from tests.conftest import make_repo
from tests.samples import (
    DESIGNED_TESTS,
    DESIGNER_MODEL,
    PROGRAMMER_MODEL,
    RIGHT_FIX,
    SLUGIFY_REPO,
)

pytestmark = pytest.mark.docker  # the real Docker engine and the sandbox image

ISSUE_TEXT = "# slugify keeps punctuation\n\nslugify('Hello, World!') should give 'hello-world'.\n"
FIX = RIGHT_FIX.replace('.replace(",", "")', "")


@pytest.fixture
def server(scripted_model):
    return scripted_model


def fix(server, *args, extra_env=None, timeout=300):
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "AGENTCODER_PROGRAMMER_MODEL": PROGRAMMER_MODEL,
           "AGENTCODER_TEST_DESIGNER_MODEL": DESIGNER_MODEL, "AGENTCODER_LLM_MAX_RETRIES": "0",
           **(extra_env or {})}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "bot.cli", "fix", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_fix_commits_on_a_new_branch_and_leaves_the_checkout_alone(server, sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    (repo / "scratch.txt").write_text("uncommitted work of the user\n")
    head_before = git.Repo(repo).head.commit.hexsha
    issue_file = tmp_path / "issue.md"
    issue_file.write_text(ISSUE_TEXT)
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, FIX)
    log = tmp_path / "log.json"
    done = fix(server, repo, "--issue-file", issue_file, "--json-log", log)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "**Result:** resolved" in done.stdout and "### Iteration 1" in done.stdout
    origin = git.Repo(repo)
    assert origin.active_branch.name == "main" and origin.head.commit.hexsha == head_before
    assert (repo / "scratch.txt").read_text() == "uncommitted work of the user\n"
    assert "re.findall" not in (repo / "textutil.py").read_text()
    branch = origin.heads["agentcoder/slugify-keeps-punctuation"]
    assert branch.commit.parents[0].hexsha == head_before
    assert sorted(branch.commit.stats.files) == ["tests/agentcoder/test_slugify_keeps_punctuation.py", "textutil.py"]
    data = json.loads(log.read_text())
    assert data["resolved"] is True and len(data["iterations"]) == 1
    assert data["iterations"][0]["tokens"]["programmer"]["completion_tokens"] > 0
    assert {t["kind"] for t in data["generated_tests"]} == {"fail_to_pass", "regression"}


def test_unresolved_run_exits_1_and_keeps_the_best_attempt(server, sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    half = FIX.replace('re.findall(r"[a-z0-9]+", text.lower())', 'text.lower().split()')
    server.add(PROGRAMMER_MODEL, half, "Nothing more to do.")
    done = fix(server, repo, "--issue", ISSUE_TEXT, extra_env={"AGENTCODER_MAX_ITERATIONS": "2"})
    assert done.returncode == 1, done.stderr
    assert "not resolved after 2 iterations" in done.stdout
    assert "best attempt is on branch agentcoder/slugify-keeps-punctuation" in done.stdout
    branch = git.Repo(repo).heads["agentcoder/slugify-keeps-punctuation"]
    assert "split()" in (branch.commit.tree / "textutil.py").data_stream.read().decode()


@pytest.mark.parametrize("answer", [
    "I would rather explain the problem in prose, with no edits at all.",
    "textutil.py\n<<<<<<< SEARCH\n    return text.lower()",  # cut off mid-block
    "missing.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",  # a file that does not exist
    "",  # empty answer
    "blah " * 200_000,  # a 1 MB answer
], ids=["prose", "truncated", "no-such-file", "empty", "enormous"])
def test_bad_model_answers_end_with_a_clear_log(server, sandbox, tmp_path, answer):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, answer)
    done = fix(server, repo, "--issue", ISSUE_TEXT, extra_env={"AGENTCODER_MAX_ITERATIONS": "1"})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "not resolved after 1 iterations" in done.stdout
    assert "Edits refused: 1" in done.stdout or "Files changed: none" in done.stdout


@pytest.mark.parametrize("fault, words", [
    (Fault(status=429), "429"),
    (Fault(status=500), "500"),
    (Fault(status=200, delay_s=5), "did not answer within 1 s"),
], ids=["rate-limit", "server-error", "timeout"])
def test_model_server_faults_end_the_run_with_one_line(server, sandbox, tmp_path, fault, words):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    server.add(DESIGNER_MODEL, fault)
    done = fix(server, repo, "--issue", ISSUE_TEXT, extra_env={"AGENTCODER_LLM_TIMEOUT_S": "1"})
    assert done.returncode == 1, done.stderr
    result_line = next(line for line in done.stdout.splitlines() if line.startswith("**Result:**"))
    assert "model error" in result_line and words in result_line.lower()
    assert "Traceback" not in done.stderr


def test_unreachable_model_server(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    closed = ScriptedOpenAI().start()
    closed.stop()
    done = fix(closed, repo, "--issue", ISSUE_TEXT)
    assert done.returncode == 1
    assert "model error" in done.stdout and "Traceback" not in done.stderr


def test_refusals_and_misuse_exit_2(server, tmp_path):
    python_repo = make_repo(tmp_path / "py", SLUGIFY_REPO)
    docs_repo = make_repo(tmp_path / "docs", {"README.md": "# docs only\n", "index.html": "<p>hi</p>\n"})
    cases = [
        (fix(server, docs_repo, "--issue", ISSUE_TEXT), "no Python code"),
        (fix(server, python_repo, "--issue", "   \n  "), "nothing to fix"),
        (fix(server, tmp_path / "nowhere", "--issue", "x"), "is not a directory"),
        (fix(server, tmp_path, "--issue", "x"), "is not a git checkout"),
        (fix(server, python_repo, "--issue-file", tmp_path / "missing.md"), "cannot read --issue-file"),
        (fix(server, python_repo, "--issue", "x", extra_env={"OPENAI_BASE_URL": "https://models.example.invalid/v1"}),
         "OPENAI_API_KEY"),
    ]
    for done, words in cases:
        assert done.returncode == 2, (words, done.stdout, done.stderr)
        assert words in done.stderr and "Traceback" not in done.stderr
    assert server.requests == []


def test_huge_issue_and_binary_files(server, sandbox, tmp_path):
    files = dict(SLUGIFY_REPO)
    repo = make_repo(tmp_path / "repo", files, commit=False)
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    make_repo(repo, {})
    issue_file = tmp_path / "issue.md"
    issue_file.write_text(ISSUE_TEXT + "details " * 130_000)  # about 1 MB
    server.add(DESIGNER_MODEL, DESIGNED_TESTS)
    server.add(PROGRAMMER_MODEL, FIX)
    done = fix(server, repo, "--issue-file", issue_file)
    assert done.returncode == 0, done.stdout + done.stderr
    prompt = server.requests_for(PROGRAMMER_MODEL)[0]["messages"][0]["content"]
    assert "[issue text trimmed]" in prompt and len(prompt) < 200_000
    assert "PNG" not in prompt  # binary content is never inlined


def test_uncommitted_changes_are_named_on_stderr_as_not_used(server, tmp_path):
    repo = make_repo(tmp_path / "repo", SLUGIFY_REPO)
    (repo / ".agentcoder.yml").write_text("instructions: never used\n")
    (repo / "textutil.py").write_text("def slugify(text):\n    return text\n")
    done = fix(server, repo, "--issue", "   ")
    assert done.returncode == 2 and "nothing to fix" in done.stderr
    warning = next(line for line in done.stderr.splitlines() if "uncommitted changes are not used" in line)
    assert ".agentcoder.yml" in warning and "textutil.py" in warning and "HEAD" in warning
    clean = make_repo(tmp_path / "clean", SLUGIFY_REPO)
    assert "uncommitted" not in fix(server, clean, "--issue", "   ").stderr

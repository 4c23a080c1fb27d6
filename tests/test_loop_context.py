"""The loop on code larger than the context: localization, READ turns, and what each agent is shown.

Scripted models over real HTTP, the real Docker sandbox, real git.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from bot.dev.openai_server import ScriptedOpenAI
from bot.loop.agent_loop import AgentLoop, LoopLimits
from bot.loop.agents import Issue, Programmer, TestDesigner
from bot.outside.model import ModelClient
from bot.outside.workspace import Workspace
from tests.conftest import make_repo

pytestmark = pytest.mark.docker

CODER, TESTER = "coder-model", "tester-model"
LOCALIZER_MARKER = "LOCALIZER-REASONING-MARKER"
DRAFT_MARKER = "PROGRAMMER-DRAFT-MARKER"


def big_module() -> str:
    """A module of about 40,000 characters; `parse_header` (in the middle) forgets to lower-case."""
    parts = ['"""Header utilities."""\n\nimport re\n']
    for index in range(160):
        if index == 80:
            parts.append(textwrap.dedent('''

                def parse_header(value):
                    """The header name, normalized."""
                    value = re.sub(r"\\s+", " ", value)
                    return value.strip()
                '''))
        parts.append(textwrap.dedent(f'''

            def helper_{index}(items, factor={index}):
                """Scale step {index}."""
                total = 0
                for item in items:
                    total += item * factor
                return total
            '''))
    return "".join(parts)


BIG_REPO = {
    "pkg/__init__.py": "",
    "pkg/big.py": big_module(),
    "tests/conftest.py": '''
        import pytest


        @pytest.fixture
        def sample_header():
            """A header name as clients send it."""
            return "  Content-TYPE "
    ''',
    "tests/test_big.py": '''
        from pkg.big import helper_1, parse_header


        def test_helper():
            assert helper_1([1, 2]) == 3


        def test_parse_header_strips(sample_header):
            assert parse_header(sample_header).strip() == parse_header(sample_header)
    ''',
}

ISSUE = Issue("parse_header does not lower-case", "`parse_header('  Content-TYPE ')` should give 'content-type'.", 12)

DESIGNED = '''```python
def test_lower_cased(sample_header):
    """The header name comes back lower-cased."""
    from pkg.big import parse_header
    assert parse_header(sample_header) == "content-type"


def test_spaces_collapse():
    """Inner runs of spaces become one."""
    from pkg.big import parse_header
    assert parse_header("A   B") == "a b"


def test_many_headers():
    """A long header is handled."""
    from pkg.big import parse_header
    assert parse_header("X " * 5000) == " ".join(["x"] * 5000)
```
'''


def edit_only_what_was_shown(request: dict) -> str:
    """A scripted programmer that copies its SEARCH lines from the request, so it can only edit code it saw."""
    prompt = request["messages"][0]["content"]
    shown = re.search(r"^def parse_header\(value\):\n(?:    .*\n)+", prompt, re.MULTILINE)
    if shown is None:
        return "I was not shown parse_header, so I cannot edit it."
    old = shown.group(0).rstrip("\n")
    new = old.replace("return value.strip()", "return value.strip().lower()")
    return f"Plan: lower-case the result. {DRAFT_MARKER}\n\npkg/big.py\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n"


@pytest.fixture
def models():
    with ScriptedOpenAI() as server:
        client = ModelClient({"programmer": CODER, "test_designer": TESTER}, base_url=server.base_url,
                             timeout_s=10, max_retries=0)
        yield server, client


def test_a_file_larger_than_the_budget_is_localized_shown_in_part_and_fixed(sandbox, models, tmp_path):
    server, client = models
    server.add(CODER, f"{LOCALIZER_MARKER}\n```\npkg/big.py\n```", f"```\npkg/big.py:parse_header\n```\n{LOCALIZER_MARKER}",
               edit_only_what_was_shown)
    server.add(TESTER, DESIGNED)
    workspace = Workspace(make_repo(tmp_path / "repo", BIG_REPO))
    limits = LoopLimits(context_token_budget=2_500)
    assert len(workspace.read("pkg/big.py")) > limits.context_chars
    outcome = AgentLoop(sandbox, Programmer(client), TestDesigner(client), limits).run(workspace, ISSUE)

    assert outcome.resolved, (outcome.stop_reason, outcome.iterations and outcome.iterations[0].feedback)
    assert outcome.localized == ["pkg/big.py:parse_header"]
    assert outcome.tokens["programmer"].calls == 3  # two localization requests and one turn
    first_turn = server.requests_for(CODER)[2]["messages"][0]["content"]
    assert "# ... lines" in first_turn and "def helper_150" not in first_turn.split("# Code relevant")[1]
    assert len(first_turn) < limits.context_chars + 5_000
    assert "return value.strip().lower()" in workspace.read("pkg/big.py")
    # The test designer saw the unchanged code, the fixtures and an example test, and nothing of the programmer's.
    (design,) = server.requests_for(TESTER)
    text = design["messages"][0]["content"]
    assert "def parse_header(value):" in text and "return value.strip()\n" in text
    assert "def sample_header():" in text and "def test_parse_header_strips(sample_header):" in text
    assert LOCALIZER_MARKER not in text and DRAFT_MARKER not in text and ".lower()" not in text


SMALL_REPO = {
    "textutil.py": '''
        def slugify(text):
            """Lower-case words joined by dashes."""
            return text.lower().replace(" ", "-")
    ''',
}

SLUG_TESTS = '''```python
def test_punctuation_removed():
    """Punctuation is dropped."""
    from textutil import slugify
    assert slugify("Hello, World!") == "hello-world"
```
'''

SLUG_FIX = '''Plan: keep only words.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(" ", "-")
=======
    import re
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))
>>>>>>> REPLACE
'''


def test_answers_that_only_read_use_up_no_iteration_and_bad_reads_get_one_line(sandbox, models, tmp_path):
    server, client = models
    server.add(CODER, "I need to look first.\nREAD textutil.py:slugify\nREAD missing.py\nREAD ../../etc/passwd",
               SLUG_FIX)
    server.add(TESTER, SLUG_TESTS)
    workspace = Workspace(make_repo(tmp_path / "repo", SMALL_REPO))
    outcome = AgentLoop(sandbox, Programmer(client), TestDesigner(client), LoopLimits()).run(
        workspace, Issue("slugify keeps punctuation", "slugify('Hello, World!') gives 'hello,-world!'", 3))
    assert outcome.resolved and len(outcome.iterations) == 1
    assert outcome.iterations[0].reads == ["textutil.py:slugify", "missing.py", "../../etc/passwd"]
    answer = server.requests_for(CODER)[1]["messages"][-1]["content"]
    assert 'def slugify(text):\n    """Lower-case words joined by dashes."""' in answer
    assert "READ missing.py: missing.py does not exist in the repository" in answer
    assert "READ ../../etc/passwd:" in answer and "outside the repository" in answer
    assert "root:" not in answer
    assert outcome.tokens["programmer"].calls == 2


def test_reads_are_bounded_per_job(sandbox, models, tmp_path):
    server, client = models
    server.add(CODER, *["READ textutil.py"] * 4)
    server.add(TESTER, SLUG_TESTS)
    workspace = Workspace(make_repo(tmp_path / "repo", SMALL_REPO))
    limits = LoopLimits(max_iterations=1, max_read_turns=2)
    outcome = AgentLoop(sandbox, Programmer(client), TestDesigner(client), limits).run(
        workspace, Issue("slugify keeps punctuation", "slugify('Hello, World!') gives 'hello,-world!'", 3))
    assert not outcome.resolved
    assert len(server.requests_for(CODER)) == 3  # the turn and two answered reads, then the limit
    assert any("used all 2 answers that only READ" in problem for problem in outcome.iterations[0].edit_problems)

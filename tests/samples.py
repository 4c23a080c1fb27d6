"""Sample repositories, issues and scripted model answers shared by several test modules."""

from __future__ import annotations

from bot.loop.agents import Issue
from bot.sandbox.results import RunResult
from tests.fakes import run_of

# -- a calculator with one wrong function (the sandbox and `agentcoder check`) -------------------------

CALC = {
    "calc.py": """
        def add(a, b):
            return a - b
    """,
    "tests/test_calc.py": """
        from calc import add

        def test_add():
            assert add(1, 2) == 3

        def test_zero():
            assert add(0, 0) == 0

        import pytest

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
    """,
}


# -- slugify keeps punctuation: the loop over real HTTP and the real sandbox -----------------------------

PROGRAMMER_MODEL, DESIGNER_MODEL = "coder-model", "tester-model"

SLUGIFY_REPO = {
    "textutil.py": '''
        def slugify(text):
            """Lower-case words joined by dashes."""
            return text.lower().replace(" ", "-")
    ''',
    "tests/test_textutil.py": '''
        from textutil import slugify

        def test_simple():
            assert slugify("Hello World") == "hello-world"
    ''',
}

ISSUE = Issue("slugify keeps punctuation", "slugify('Hello, World!') should give 'hello-world', not 'hello,-world!'.", 7)

DESIGNED_TESTS = '''Here are the tests.

```python
def test_punctuation_removed():
    """Punctuation is dropped from the slug."""
    from textutil import slugify
    assert slugify("Hello, World!") == "hello-world"


def test_plain_words_still_work():
    """Plain words keep working."""
    from textutil import slugify
    assert slugify("a b") == "a-b"


def test_large_input():
    """A long title is handled."""
    from textutil import slugify
    assert slugify("word! " * 5000) == "-".join(["word"] * 5000)
```
'''

WRONG_FIX = '''Clarify: punctuation must go.
Plan: strip commas only.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(" ", "-")
=======
    return text.lower().replace(",", "").replace(" ", "-")
>>>>>>> REPLACE
'''

RIGHT_FIX = '''Plan: keep only letters, digits and spaces, then join the words with dashes.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(",", "").replace(" ", "-")
=======
    import re
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)
>>>>>>> REPLACE
'''


# -- the same issue for the in-memory fakes (the loop's and the job's unit tests) ------------------------

SUITE = "tests/test_textutil.py::test_simple"
NEW = "tests/agentcoder/test_issue_7.py::test_punctuation_removed"
REPO = {
    "textutil.py": 'def slugify(text):\n    """Lower-case words joined by dashes."""\n    return text.lower().replace(" ", "-")\n',
    "tests/test_textutil.py": "from textutil import slugify\n\ndef test_simple():\n    assert slugify('a b') == 'a-b'\n",
}
TEXTUTIL_ISSUE = Issue("slugify keeps punctuation", "slugify('Hello, World!') should give 'hello-world'.", 7)
TESTS = '''```python
def test_punctuation_removed():
    """Punctuation is dropped."""
    from textutil import slugify
    assert slugify("Hello, World!") == "hello-world"
```'''
WRONG = '''Plan: strip commas only.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(" ", "-")
=======
    return text.lower().replace(",", "").replace(" ", "-")
>>>>>>> REPLACE
'''
RIGHT = '''Plan: keep letters and digits only.

textutil.py
<<<<<<< SEARCH
    return text.lower().replace(",", "").replace(" ", "-")
=======
    return "-".join(re.findall("[a-z0-9]+", text.lower()))
>>>>>>> REPLACE
'''
RIGHT_FIRST = RIGHT.replace('.replace(",", "").replace(" ", "-")', '.replace(" ", "-")')


def judge(files: dict[str, str], selection: tuple[str, ...]) -> RunResult:
    """Decide like the real tests would: the new test passes once slugify drops punctuation."""
    fixed = "re.findall" in files["textutil.py"]
    if selection:
        message = "" if fixed else "AssertionError: assert 'hello,-world!' == 'hello-world'"
        return run_of({NEW: "passed" if fixed else "failed"}, messages={NEW: message})
    return run_of({SUITE: "passed"})

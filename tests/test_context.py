"""What the agents see of a repository: code by classes and functions, the ranked map, the bad inputs."""

from __future__ import annotations

import textwrap

from bot.loop.context import Outlines, SourceFile, build_context, repository_map
from bot.loop.ranking import Query, frame_matches
from bot.loop.symbols import outline, render_view

BUDGET = 12_000


def big_module(functions: int = 120, target: str = "parse_header") -> str:
    """A module far larger than the budget, with one function the issue is about in the middle."""
    parts = ['"""A large module."""\n\nimport os\nimport re\n\nLIMIT = 10\n']
    for index in range(functions):
        name = target if index == functions // 2 else f"helper_{index}"
        parts.append(textwrap.dedent(f'''

            def {name}(value, option={index}):
                """Do step {index} of the work."""
                total = 0
                for item in range(option):
                    total += item * {index}
                if value is None:
                    return total
                return value + total
            '''))
    parts.append(textwrap.dedent('''

        class Parser:
            """Parses things."""

            mode = "strict"

            def feed(self, data):
                """Take more data."""
                self.data = data

            def close(self):
                """Finish."""
                return self.data
        '''))
    return "".join(parts)


def sources(**files: str) -> list[SourceFile]:
    return [SourceFile(path.replace("__", "/").replace("_dot_", "."), text) for path, text in files.items()]


def test_a_file_larger_than_the_budget_shows_its_skeleton_and_the_function_the_issue_names():
    module = big_module()
    assert len(module) > BUDGET
    files = [SourceFile("pkg/big.py", module), SourceFile("pkg/other.py", "def unrelated():\n    return 1\n")]
    context = build_context(files, "parse_header() returns the wrong total\nCalling `parse_header(None)` ...", BUDGET)
    shown = {snippet.path: snippet for snippet in context.snippets}
    view = shown["pkg/big.py"]
    assert not view.complete and "parse_header" in view.symbols
    whole_function = module[module.index("def parse_header"):module.index("return value + total", module.index(
        "def parse_header")) + len("return value + total")]
    assert whole_function in view.text  # verbatim, so a SEARCH block can be copied from it
    assert "import os" in view.text and "class Parser:" in view.text  # the skeleton
    assert "# ... lines" in view.text and "not shown" in view.text
    assert context.size() <= BUDGET
    assert context.repo_map.splitlines()[0].startswith("pkg/big.py")  # shown files always lead the map


def test_every_shown_line_is_verbatim_and_markers_replace_hidden_runs():
    text = "a = 1\nb = 2\n\n\nc = 3\nd = 4\ne = 5\n"
    assert render_view(text, [(1, 1), (5, 5)]) == "a = 1\n# ... lines 2-4 not shown\nc = 3\n# ... lines 6-7 not shown"
    assert render_view(text, [(1, 2), (5, 5)]) == "a = 1\nb = 2\n\n\nc = 3\n# ... lines 6-7 not shown"


def test_small_files_are_shown_whole_and_the_map_is_ranked_not_cut_in_path_order():
    files = [SourceFile(f"aaa/module_{index:03}.py", f"def function_{index}(x):\n    return x\n" * 20)
             for index in range(300)]
    files.append(SourceFile("zzz/slugify.py", "def slugify(text):\n    return text.lower()\n"))
    context = build_context(files, "slugify keeps punctuation: `slugify('a, b')`", 4000)
    assert [snippet.path for snippet in context.snippets][0] == "zzz/slugify.py"
    assert context.snippets[0].complete
    assert "zzz/slugify.py" in context.repo_map  # last in path order, first by relevance
    assert "more files" in context.repo_map
    assert context.size() <= 4000


def test_the_map_stops_parsing_when_its_budget_is_spent():
    files = {f"pkg/m{index}.py": SourceFile(f"pkg/m{index}.py", "def f(x):\n    return x\n") for index in range(500)}

    class Counting(Outlines):
        parsed = 0

        def of(self, source):
            Counting.parsed += 1
            return super().of(source)

    text = repository_map(files, [], list(files), 600, Counting())
    assert len(text) <= 600 and "more files" in text
    assert Counting.parsed < 60


def test_an_issue_that_names_no_identifier_still_gets_context():
    module = big_module()
    files = [SourceFile("pkg/big.py", module), SourceFile("pkg/notes.py", "def remember():\n    return 'notes'\n")]
    context = build_context(files, "It is broken\nPlease fix it, it does not work at all.", BUDGET)
    assert context.size() <= BUDGET
    assert "pkg/big.py" in context.repo_map and "pkg/notes.py" in context.repo_map


def test_a_long_traceback_from_another_project_is_bounded_and_its_frames_ignored():
    frames = "".join(f'  File "/srv/other/project/module_{index}.py", line {index}, in step_{index}\n    x()\n'
                     for index in range(5000))
    issue = f"Crash in our service\n```\nTraceback (most recent call last):\n{frames}ValueError: boom\n```"
    query = Query.parse(issue)
    assert len(query.frames) <= 60 and len(query.terms) <= 48
    files = [SourceFile("pkg/big.py", big_module()), SourceFile("pkg/module_3.py", "def other():\n    pass\n")]
    context = build_context(files, issue, BUDGET)
    assert context.size() <= BUDGET
    assert not frame_matches("/srv/other/project/module_3.py", "pkg/module_3.py")


def test_a_traceback_frame_points_at_the_file_and_function():
    module = big_module()
    issue = ('Error\n```\nTraceback (most recent call last):\n  File "/venv/lib/python3.12/site-packages/pkg/big.py", '
             'line 300, in parse_header\n    return value + total\nTypeError: unsupported operand\n```')
    files = [SourceFile("src/pkg/big.py", module), SourceFile("src/pkg/helpers.py", "def value():\n    return 1\n")]
    context = build_context(files, issue, BUDGET)
    assert context.snippets[0].path == "src/pkg/big.py"
    assert "parse_header" in context.snippets[0].symbols


def test_a_file_that_does_not_parse_is_shown_by_line_windows():
    lines = [f"value_{index} = {index}" for index in range(3000)]
    lines[1500] = "def broken_parser(:  # the issue is here"
    text = "\n".join(lines) + "\n"
    assert outline(text) is None
    context = build_context([SourceFile("pkg/broken.py", text)], "`broken_parser` has a syntax error", BUDGET)
    view = context.snippets[0]
    assert "def broken_parser(:" in view.text and not view.complete
    assert "value_1490 = 1490" in view.text and "value_10 = 10\n" not in view.text
    assert "not shown" in view.text


def test_tests_are_never_shown_to_the_programmer_as_code_to_change():
    files = [SourceFile("tests/test_slug.py", "def test_slugify():\n    assert slugify('a') == 'a'\n"),
             SourceFile("slug.py", "def slugify(text):\n    return text\n")]
    context = build_context(files, "slugify is wrong", BUDGET)
    assert [snippet.path for snippet in context.snippets] == ["slug.py"]


def test_the_designer_sees_the_relevant_code_the_conftest_fixtures_and_an_example_test():
    from bot.loop.designer_context import designer_context
    files = [
        SourceFile("pkg/big.py", big_module()),
        SourceFile("tests/conftest.py", "import pytest\n\n\n@pytest.fixture\ndef raw_header():\n    \"\"\"A header.\"\"\"\n"
                                        "    return ' X '\n\n\ndef not_a_fixture():\n    return 1\n"),
        SourceFile("tests/test_big.py", "from pkg.big import parse_header\n\n\ndef test_it(raw_header):\n"
                                        "    assert parse_header(raw_header)\n"),
        SourceFile("tests/test_other.py", "def test_unrelated():\n    assert True\n"),
        SourceFile("tests/agentcoder/test_issue_1.py", "from pkg.big import parse_header\n"),
    ]
    view = designer_context(files, "`parse_header(None)` crashes", BUDGET)
    code = "\n".join(snippet.text for snippet in view.code.snippets)
    assert "def parse_header(value, option=60):" in code
    (fixtures,) = view.fixtures
    assert "def raw_header():" in fixtures.text and "def not_a_fixture" not in fixtures.text
    assert [example.path for example in view.examples] == ["tests/test_big.py"]
    assert view.size() <= BUDGET


def test_a_file_over_a_megabyte_is_never_parsed_whole_but_shown_by_windows():
    text = "".join(f"def function_{index}(value):\n    return value + {index}\n\n\n" for index in range(30_000))
    text = text.replace("def function_15000(value):", "def overflowing_total(value):")
    assert len(text) > 1_000_000 and outline(text) is None
    context = build_context([SourceFile("pkg/huge.py", text)], "`overflowing_total` overflows", BUDGET)
    (view,) = context.snippets
    assert "def overflowing_total(value):\n    return value + 15000" in view.text and "not shown" in view.text
    assert context.size() <= BUDGET

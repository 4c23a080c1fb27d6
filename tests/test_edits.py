"""Parsing and applying SEARCH/REPLACE edit blocks: the programmer agent's only way to change code."""

import random

import pytest

from bot.loop.edits import (
    ApplyResult,
    EditBlock,
    ParseResult,
    apply_edits,
    describe_problems,
    normalize_path,
    parse_edit_blocks,
)


def edit(path: str, search: str, replace: str, fence: str | None = "```python") -> str:
    """One block as a model writes it; `search` and `replace` end with a newline unless empty."""
    body = f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    return f"{fence}\n{body}```\n" if fence else body


def apply_answer(answer: str, files: dict[str, str], refuse=lambda path: None) -> ApplyResult:
    parsed = parse_edit_blocks(answer)
    assert parsed.problems == []
    return apply_edits(parsed.blocks, files.get, refuse)


APP = """\
import os


def add(a, b):
    return a - b


def mul(a, b):
    return a * b
"""


# -- parsing: well-formed answers -------------------------------------------------------------


def test_fenced_block_with_prose_around_it():
    answer = "I'll fix the sign.\n\n" + edit("src/app.py", "    return a - b\n", "    return a + b\n") + "\nDone!\n"
    assert parse_edit_blocks(answer) == ParseResult(
        [EditBlock("src/app.py", "    return a - b\n", "    return a + b\n")], []
    )


def test_bare_block_without_fence():
    answer = edit("src/app.py", "old\n", "new\n", fence=None)
    assert parse_edit_blocks(answer).blocks == [EditBlock("src/app.py", "old\n", "new\n")]


def test_path_on_the_line_before_the_fence_opener():
    answer = "src/app.py\n```python\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("src/app.py", "old\n", "new\n")]


def test_path_before_the_fence_with_a_blank_line_between():
    answer = "src/app.py\n\n```\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("src/app.py", "old\n", "new\n")]


def test_path_in_its_own_fence_before_the_block_fence():
    answer = " ```python\nfoo.txt\n```\n```python\n<<<<<<< SEARCH\none\n=======\ntwo\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("foo.txt", "one\n", "two\n")]


def test_tilde_fence():
    answer = "~~~\nnotes.md\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n~~~\n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("notes.md", "old\n", "new\n")]


def test_blocks_for_several_files_keep_their_order():
    answer = (
        edit("a.py", "a = 1\n", "a = 2\n")
        + "\nAnd the caller:\n\n"
        + edit("pkg/b.py", "b = 1\n", "b = 2\n", fence=None)
        + edit("a.py", "c = 1\n", "c = 2\n")
    )
    assert parse_edit_blocks(answer).blocks == [
        EditBlock("a.py", "a = 1\n", "a = 2\n"),
        EditBlock("pkg/b.py", "b = 1\n", "b = 2\n"),
        EditBlock("a.py", "c = 1\n", "c = 2\n"),
    ]


def test_later_block_in_the_same_fence_without_a_path_reuses_the_previous_path():
    answer = (
        "```python\nfoo.txt\n<<<<<<< SEARCH\none\n=======\ntwo\n>>>>>>> REPLACE\n\n...\n\n"
        "<<<<<<< SEARCH\nthree\n=======\nfour\n>>>>>>> REPLACE\n```\n"
    )
    assert parse_edit_blocks(answer) == ParseResult(
        [EditBlock("foo.txt", "one\n", "two\n"), EditBlock("foo.txt", "three\n", "four\n")], []
    )


def test_block_right_after_the_previous_fence_reuses_its_path():
    answer = edit("foo.txt", "one\n", "two\n") + "\n```python\n<<<<<<< SEARCH\nthree\n=======\nfour\n"
    answer += ">>>>>>> REPLACE\n```\n"
    assert [block.path for block in parse_edit_blocks(answer).blocks] == ["foo.txt", "foo.txt"]


def test_empty_search_and_empty_replace_sections():
    answer = edit("new.py", "", "print('hi')\n") + edit("old.py", "gone = True\n", "")
    assert parse_edit_blocks(answer).blocks == [
        EditBlock("new.py", "", "print('hi')\n"),
        EditBlock("old.py", "gone = True\n", ""),
    ]


@pytest.mark.parametrize("count", [5, 6, 7, 8, 9])
def test_markers_of_five_to_nine_characters(count):
    answer = f"a.py\n{'<' * count} SEARCH\nold\n{'=' * count}\nnew\n{'>' * count} REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult([EditBlock("a.py", "old\n", "new\n")], [])


@pytest.mark.parametrize("count", [4, 10])
def test_markers_of_other_lengths_are_prose(count):
    answer = f"a.py\n{'<' * count} SEARCH\nold\n{'=' * count}\nnew\n{'>' * count} REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult([], [])


def test_markers_with_surrounding_spaces_and_search_variant():
    answer = "a.py\n  <<<<<<< SEARCH>  \nold\n=======\t\nnew\n >>>>>>> REPLACE \n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("a.py", "old\n", "new\n")]


def test_marker_after_other_text_on_its_line_is_prose():
    answer = "a.py\nsee <<<<<<< SEARCH\nold\nx =======\nnew\nthen >>>>>>> REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult([], [])


def test_last_marker_without_final_newline():
    answer = "a.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE"
    assert parse_edit_blocks(answer).blocks == [EditBlock("a.py", "old\n", "new\n")]


def test_content_keeps_inner_fences_when_the_block_uses_a_longer_fence():
    answer = (
        "````markdown\nREADME.md\n<<<<<<< SEARCH\n```sh\npip install x\n```\n"
        "=======\n```sh\npip install y\n```\n>>>>>>> REPLACE\n````\n"
    )
    assert parse_edit_blocks(answer).blocks == [
        EditBlock("README.md", "```sh\npip install x\n```\n", "```sh\npip install y\n```\n")
    ]


def test_divider_line_inside_replace_is_content():
    answer = "docs/index.rst\n<<<<<<< SEARCH\nIntro\n=======\nTitle\n=======\nIntro\n>>>>>>> REPLACE\n"
    assert parse_edit_blocks(answer).blocks == [EditBlock("docs/index.rst", "Intro\n", "Title\n=======\nIntro\n")]


def test_setext_heading_in_prose_is_not_a_marker():
    answer = "Summary\n=======\n\nThe change:\n\n" + edit("a.py", "x\n", "y\n")
    assert parse_edit_blocks(answer) == ParseResult([EditBlock("a.py", "x\n", "y\n")], [])


def test_crlf_answer_gives_lf_sections():
    answer = edit("a.py", "one\n", "two\nthree\n").replace("\n", "\r\n")
    assert parse_edit_blocks(answer).blocks == [EditBlock("a.py", "one\n", "two\nthree\n")]


def test_unicode_path_and_content():
    answer = edit("docs/übersicht.md", "Grüße 👋\n", "Grüße, Welt 🌍\n")
    assert parse_edit_blocks(answer).blocks == [EditBlock("docs/übersicht.md", "Grüße 👋\n", "Grüße, Welt 🌍\n")]


def test_form_feed_and_other_line_separators_stay_inside_lines():
    answer = edit("a.py", "x = 1\x0c\n", "y = '\u2028'\n")
    assert parse_edit_blocks(answer).blocks == [EditBlock("a.py", "x = 1\x0c\n", "y = '\u2028'\n")]


@pytest.mark.parametrize(
    "written",
    [
        "src/app.py",
        "  src/app.py  ",
        "`src/app.py`",
        "**src/app.py**",
        "**`src/app.py`**",
        "'src/app.py'",
        '"src/app.py"',
        "# src/app.py",
        "### `src/app.py`",
        "src/app.py:",
        "`src/app.py`:",
        "File: src/app.py",
        "**File:** `src/app.py`",
        "Filename: `src/app.py`",
        "- src/app.py",
        "> src/app.py",
        "In `src/app.py`:",
    ],
)
def test_path_decoration_is_stripped(written):
    answer = f"{written}\n```python\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(answer) == ParseResult([EditBlock("src/app.py", "old\n", "new\n")], [])


def test_markdown_escaped_underscores_in_path():
    answer = edit("pkg/my\\_module.py", "a\n", "b\n")
    assert parse_edit_blocks(answer).blocks[0].path == "pkg/my_module.py"


def test_parser_keeps_path_as_written_for_apply_to_check():
    answer = edit("../etc/passwd", "a\n", "b\n") + edit("./src/x.py", "a\n", "b\n")
    assert [block.path for block in parse_edit_blocks(answer).blocks] == ["../etc/passwd", "./src/x.py"]


def test_prose_without_blocks_gives_nothing():
    answer = "I looked at the code and I believe no change is needed.\n\n```python\nprint('hi')\n```\n"
    assert parse_edit_blocks(answer) == ParseResult([], [])


def test_empty_answer_gives_nothing():
    assert parse_edit_blocks("") == ParseResult([], [])


# -- parsing: malformed answers ---------------------------------------------------------------


def test_block_without_any_path_is_a_problem():
    answer = "```python\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n"
    result = parse_edit_blocks(answer)
    assert result.blocks == []
    assert result.problems == [
        "The SEARCH/REPLACE block starting at line 2 of your answer has no file path; write the"
        " repository-relative path alone on the line just before `<<<<<<< SEARCH` (or before the opening"
        " ``` fence) and resend the block."
    ]


def test_prose_right_before_a_block_is_not_taken_for_a_path():
    answer = edit("a.py", "x\n", "y\n", fence=None) + "\nNow change the helper as well:\n"
    answer += "<<<<<<< SEARCH\np\n=======\nq\n>>>>>>> REPLACE\n"
    result = parse_edit_blocks(answer)
    assert result.blocks == [EditBlock("a.py", "x\n", "y\n")]
    assert len(result.problems) == 1
    assert "starting at line 9 of your answer has no file path" in result.problems[0]


def test_blocks_after_a_pathless_block_still_parse():
    answer = "<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n\n" + edit("b.py", "1\n", "2\n")
    result = parse_edit_blocks(answer)
    assert result.blocks == [EditBlock("b.py", "1\n", "2\n")]
    assert len(result.problems) == 1 and "line 1 of your answer has no file path" in result.problems[0]


def test_answer_cut_inside_the_search_section():
    answer = "Here:\n\n```python\nsrc/app.py\n<<<<<<< SEARCH\ndef add(a, b):\n    return a"
    assert parse_edit_blocks(answer) == ParseResult(
        [],
        [
            "The SEARCH/REPLACE block for src/app.py starting at line 5 of your answer has no `=======` line:"
            " the answer ends inside its SEARCH section; resend the whole block."
        ],
    )


def test_answer_cut_inside_the_replace_section():
    answer = edit("ok.py", "a\n", "b\n") + "src/app.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPL"
    assert parse_edit_blocks(answer) == ParseResult(
        [EditBlock("ok.py", "a\n", "b\n")],
        [
            "The SEARCH/REPLACE block for src/app.py starting at line 10 of your answer has no `>>>>>>> REPLACE`"
            " line: the answer ends inside its REPLACE section; resend the whole block."
        ],
    )


def test_missing_divider_before_the_next_block():
    answer = "a.py\n<<<<<<< SEARCH\nold\nb.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult(
        [EditBlock("b.py", "x\n", "y\n")],
        [
            "The SEARCH/REPLACE block for a.py starting at line 2 of your answer has no `=======` line before"
            " the next `<<<<<<< SEARCH` (line 5); resend the whole block."
        ],
    )


def test_missing_replace_marker_before_the_next_block():
    answer = "a.py\n<<<<<<< SEARCH\nold\n=======\nnew\n```\n\nb.py\n```\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult(
        [EditBlock("b.py", "x\n", "y\n")],
        [
            "The SEARCH/REPLACE block for a.py starting at line 2 of your answer has no `>>>>>>> REPLACE` line"
            " before the next `<<<<<<< SEARCH` (line 10); resend the whole block."
        ],
    )


def test_next_block_directly_after_a_divider_does_not_take_the_divider_for_a_path():
    answer = "a.py\n<<<<<<< SEARCH\nold\n=======\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    result = parse_edit_blocks(answer)
    assert [block.path for block in result.blocks] == ["a.py"]
    assert "has no `>>>>>>> REPLACE` line before the next `<<<<<<< SEARCH` (line 5)" in result.problems[0]


def test_search_and_replace_markers_without_divider():
    answer = "a.py\n<<<<<<< SEARCH\nold\nnew\n>>>>>>> REPLACE\n" + edit("b.py", "1\n", "2\n")
    result = parse_edit_blocks(answer)
    assert result.blocks == [EditBlock("b.py", "1\n", "2\n")]
    assert result.problems == [
        "The SEARCH/REPLACE block for a.py starting at line 2 of your answer has no `=======` line between"
        " `<<<<<<< SEARCH` and `>>>>>>> REPLACE`; resend the whole block."
    ]


def test_replace_marker_without_a_search_marker():
    answer = "a.py\nold\n=======\nnew\n>>>>>>> REPLACE\n"
    assert parse_edit_blocks(answer) == ParseResult(
        [],
        [
            "Line 5 of your answer has `>>>>>>> REPLACE` without a `<<<<<<< SEARCH` before it; a block is the"
            " file path, `<<<<<<< SEARCH`, the old lines, `=======`, the new lines, `>>>>>>> REPLACE`."
        ],
    )


def test_line_numbers_in_problems_count_crlf_lines_once():
    answer = ("intro\n\n" + edit("a.py", "x\n", "y\n") + "b.py\n<<<<<<< SEARCH\nz\n").replace("\n", "\r\n")
    result = parse_edit_blocks(answer)
    assert len(result.blocks) == 1
    assert "starting at line 12 of your answer" in result.problems[0]


# -- parsing: size --------------------------------------------------------------------------


def test_five_megabytes_of_prose_parse_to_nothing():
    prose = "The quick brown fox jumps over the lazy dog; SEARCH and REPLACE are just words here.\n" * 60_000
    assert len(prose) > 5_000_000
    result = parse_edit_blocks(prose)
    assert result == ParseResult([], [])


def test_five_megabytes_of_prose_with_markers_and_a_block_at_the_end_parse():
    prose = ("Lorem ipsum <<<<< dolor >>>>> sit amet\n=======\n" * 120_000) + edit("a.py", "x\n", "y\n")
    assert len(prose) > 5_000_000
    result = parse_edit_blocks(prose)
    assert result == ParseResult([EditBlock("a.py", "x\n", "y\n")], [])


def test_five_megabytes_of_blank_lines_before_a_block_are_a_problem():
    answer = "\n" * 5_000_000 + "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    result = parse_edit_blocks(answer)
    assert result.blocks == [] and "line 5000001 of your answer has no file path" in result.problems[0]


def test_twenty_thousand_blocks_parse():
    answer = "".join(edit(f"pkg/m{number}.py", f"a = {number}\n", f"a = {number + 1}\n") for number in range(20_000))
    result = parse_edit_blocks(answer)
    assert len(result.blocks) == 20_000 and result.problems == []
    assert result.blocks[-1] == EditBlock("pkg/m19999.py", "a = 19999\n", "a = 20000\n")


# -- applying: exact matches ----------------------------------------------------------------


def test_exact_replacement_changes_only_the_matched_lines():
    result = apply_answer(edit("src/app.py", "    return a - b\n", "    return a + b\n"), {"src/app.py": APP})
    assert result.problems == [] and result.applied == 1
    assert result.files == {"src/app.py": APP.replace("a - b", "a + b")}


def test_sequential_blocks_for_one_file_apply_to_the_previous_result():
    answer = (
        edit("src/app.py", "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n")
        + edit("src/app.py", "    return a + b\n", "    total = a + b\n    return total\n")
    )
    result = apply_answer(answer, {"src/app.py": APP})
    assert result.applied == 2 and result.problems == []
    assert result.files["src/app.py"] == APP.replace("    return a - b\n", "    total = a + b\n    return total\n")


def test_blocks_for_several_files():
    files = {"a.py": "x = 1\n", "b.py": "y = 1\n", "c.py": "z = 1\n"}
    result = apply_answer(edit("a.py", "x = 1\n", "x = 2\n") + edit("b.py", "y = 1\n", "y = 2\n"), files)
    assert result.files == {"a.py": "x = 2\n", "b.py": "y = 2\n"}
    assert result.applied == 2


def test_deleting_lines_with_an_empty_replace():
    result = apply_answer(edit("src/app.py", "def mul(a, b):\n    return a * b\n", ""), {"src/app.py": APP})
    assert result.files["src/app.py"] == "import os\n\n\ndef add(a, b):\n    return a - b\n\n\n"


def test_file_without_final_newline_keeps_that():
    result = apply_answer(edit("a.txt", "two\n", "2\n"), {"a.txt": "one\ntwo\nthree"})
    assert result.files == {"a.txt": "one\n2\nthree"}
    result = apply_answer(edit("a.txt", "three\n", "3\nfour\n"), {"a.txt": "one\ntwo\nthree"})
    assert result.files == {"a.txt": "one\ntwo\n3\nfour"}


def test_crlf_file_keeps_crlf_line_endings():
    original = "one\r\ntwo\r\nthree\r\n"
    result = apply_answer(edit("win.txt", "two\n", "2\nand a half\n"), {"win.txt": original})
    assert result.files == {"win.txt": "one\r\n2\r\nand a half\r\nthree\r\n"}


def test_crlf_answer_applies_to_lf_file():
    answer = edit("a.py", "x = 1\n", "x = 2\n").replace("\n", "\r\n")
    assert apply_answer(answer, {"a.py": "x = 1\ny = 1\n"}).files == {"a.py": "x = 2\ny = 1\n"}


def test_unicode_content():
    files = {"i18n/de.txt": "Hallo 👋\nGrüße aus Köln\n"}
    result = apply_answer(edit("i18n/de.txt", "Grüße aus Köln\n", "Grüße aus München 🥨\n"), files)
    assert result.files == {"i18n/de.txt": "Hallo 👋\nGrüße aus München 🥨\n"}


def test_blocks_built_by_hand_without_final_newlines():
    result = apply_edits([EditBlock("a.py", "x = 1", "x = 2")], {"a.py": "x = 1\ny = 1\n"}.get)
    assert result.files == {"a.py": "x = 2\ny = 1\n"}


def test_block_that_changes_nothing_counts_but_lists_no_file():
    result = apply_answer(edit("a.py", "x = 1\n", "x = 1\n"), {"a.py": "x = 1\n"})
    assert result == ApplyResult(files={}, problems=[], applied=1)


def test_two_edits_that_cancel_out_list_no_file():
    answer = edit("a.py", "x = 1\n", "x = 2\n") + edit("a.py", "x = 2\n", "x = 1\n")
    assert apply_answer(answer, {"a.py": "x = 1\n"}) == ApplyResult(files={}, problems=[], applied=2)


def test_exact_match_wins_over_lenient_ones():
    files = {"a.py": "if x:\n    y = 1\ny = 1\n"}
    result = apply_answer(edit("a.py", "y = 1\n", "y = 2\n"), files)
    assert result.files == {"a.py": "if x:\n    y = 1\ny = 2\n"}


def test_search_is_matched_as_whole_lines_only():
    result = apply_answer(edit("a.py", "total = 1\n", "total = 2\n"), {"a.py": "subtotal = 1\n"})
    assert result.applied == 0 and result.files == {}
    assert "does not match" in result.problems[0]


# -- applying: new files --------------------------------------------------------------------


def test_empty_search_creates_a_missing_file():
    result = apply_answer(edit("pkg/new.py", "", "VALUE = 1\n"), {})
    assert result == ApplyResult(files={"pkg/new.py": "VALUE = 1\n"}, problems=[], applied=1)


def test_created_file_can_be_edited_by_a_later_block():
    answer = edit("new.py", "", "a = 1\nb = 2\n") + edit("new.py", "b = 2\n", "b = 3\n")
    assert apply_answer(answer, {}).files == {"new.py": "a = 1\nb = 3\n"}


def test_creating_an_empty_file():
    assert apply_answer(edit("pkg/__init__.py", "", ""), {}).files == {"pkg/__init__.py": ""}


def test_empty_search_fills_an_existing_empty_file():
    assert apply_answer(edit("pkg/__init__.py", "", "X = 1\n"), {"pkg/__init__.py": ""}).files == {
        "pkg/__init__.py": "X = 1\n"
    }


def test_empty_search_on_an_existing_file_is_refused():
    result = apply_answer(edit("src/app.py", "", "print('appended')\n"), {"src/app.py": APP})
    assert result == ApplyResult(
        files={},
        problems=[
            "src/app.py already exists and is not empty, so it cannot be created with an empty SEARCH section;"
            " put the exact existing lines to change in the SEARCH section."
        ],
        applied=0,
    )


def test_creating_the_same_file_twice_refuses_the_second_block():
    answer = edit("new.py", "", "first\n") + edit("new.py", "", "second\n")
    result = apply_answer(answer, {})
    assert result.files == {"new.py": "first\n"}
    assert result.applied == 1 and "new.py already exists" in result.problems[0]


def test_whitespace_only_search_counts_as_empty():
    assert apply_answer(edit("new.py", "\n  \n", "x = 1\n"), {}).files == {"new.py": "x = 1\n"}


def test_search_in_a_missing_file():
    result = apply_answer(edit("src/nope.py", "x = 1\n", "x = 2\n"), {"src/app.py": APP})
    assert result.problems == [
        "src/nope.py does not exist, so its SEARCH section cannot match. To create a new file use an empty"
        " SEARCH section; to edit an existing file use its exact path."
    ]
    assert result.files == {} and result.applied == 0


# -- applying: lenient matches --------------------------------------------------------------


def test_trailing_whitespace_in_the_file_is_ignored():
    files = {"a.py": "def f():  \n    return 1\t\n"}
    result = apply_answer(edit("a.py", "def f():\n    return 1\n", "def f():\n    return 2\n"), files)
    assert result.files == {"a.py": "def f():\n    return 2\n"}


def test_trailing_whitespace_in_the_search_is_ignored():
    result = apply_answer(edit("a.py", "x = 1   \n", "x = 2\n"), {"a.py": "x = 1\ny = 2\n"})
    assert result.files == {"a.py": "x = 2\ny = 2\n"}


def test_missing_indentation_is_added_to_the_replacement():
    files = {"a.py": "class A:\n    def f(self):\n        return 1\n"}
    search = "def f(self):\n    return 1\n"
    replace = "def f(self):\n    if self:\n        return 2\n\n    return 1\n"
    result = apply_answer(edit("a.py", search, replace), files)
    assert result.files == {
        "a.py": "class A:\n    def f(self):\n        if self:\n            return 2\n\n        return 1\n"
    }


def test_partly_missing_indentation_is_completed():
    files = {"a.txt": "    line1\n    line2\n    line3\n"}
    result = apply_answer(edit("a.txt", " line1\n line2\n", " new_line1\n     new_line2\n"), files)
    assert result.files == {"a.txt": "    new_line1\n        new_line2\n    line3\n"}


def test_extra_indentation_is_removed_from_the_replacement():
    files = {"a.py": "def f():\n    return 1\n"}
    search = "    def f():\n        return 1\n"
    replace = "    def f():\n        return 2\n"
    assert apply_answer(edit("a.py", search, replace), files).files == {"a.py": "def f():\n    return 2\n"}


def test_tab_indentation_offset():
    files = {"Makefile": "all:\n\tgo build\n\tgo test\n"}
    result = apply_answer(edit("Makefile", "go test\n", "go vet\ngo test\n"), files)
    assert result.files == {"Makefile": "all:\n\tgo build\n\tgo vet\n\tgo test\n"}


def test_non_uniform_indentation_difference_does_not_match():
    files = {"a.py": "def f():\n    if x:\n        return 1\n"}
    result = apply_answer(edit("a.py", "def f():\n  if x:\n      return 1\n", "pass\n"), files)
    assert result.applied == 0 and result.files == {}
    assert result.problems[0].startswith("The SEARCH section for a.py does not match the file.")


def test_spurious_blank_lines_at_the_ends_of_search_are_ignored():
    files = {"a.py": "x = 1\ny = 2\nz = 3\n"}
    result = apply_answer(edit("a.py", "\ny = 2\n\n", "\ny = 20\n\n"), files)
    assert result.files == {"a.py": "x = 1\ny = 20\nz = 3\n"}


def test_blank_lines_only_in_replace_are_kept():
    files = {"a.py": "x = 1\ny = 2\nz = 3\n"}
    result = apply_answer(edit("a.py", "\ny = 2\n", "y = 2\n\n"), files)
    assert result.files == {"a.py": "x = 1\ny = 2\n\nz = 3\n"}


def test_deleting_with_blank_ends_on_both_sides():
    result = apply_answer(edit("a.txt", "\nfoo\n\n", "\n"), {"a.txt": "a\nfoo\nb\n"})
    assert result.files == {"a.txt": "a\nb\n"}


def test_blank_line_ends_combined_with_missing_indentation():
    files = {"a.py": "class A:\n    x = 1\n    y = 2\n"}
    result = apply_answer(edit("a.py", "\nx = 1\n", "\nx = 10\n"), files)
    assert result.files == {"a.py": "class A:\n    x = 10\n    y = 2\n"}


def test_lenient_match_respects_crlf_files():
    files = {"a.py": "def f():\r\n    return 1\r\n"}
    result = apply_answer(edit("a.py", "return 1\n", "return 2\n"), files)
    assert result.files == {"a.py": "def f():\r\n    return 2\r\n"}


# -- applying: ambiguous matches ------------------------------------------------------------


def test_search_matching_several_places_is_refused():
    files = {"a.py": "x = 1\ny = 2\nx = 1\nz = 3\nx = 1\n"}
    result = apply_answer(edit("a.py", "x = 1\n", "x = 9\n"), files)
    assert result.files == {} and result.applied == 0
    assert result.problems == [
        "The SEARCH section for a.py matches 3 places (starting at lines 1, 3, 5); include more surrounding"
        " lines so that it matches only one. It searched for:\n```\nx = 1\n```"
    ]


def test_overlapping_matches_are_ambiguous():
    result = apply_answer(edit("a.txt", "a\na\n", "b\n"), {"a.txt": "a\na\na\n"})
    assert "matches 2 places (starting at lines 1, 2)" in result.problems[0]


def test_ambiguous_lenient_match_is_refused():
    files = {"a.py": "def f():\n    pass\n\ndef g():\n    pass\n"}
    result = apply_answer(edit("a.py", "pass\n", "return 1\n"), files)
    assert "matches 2 places (starting at lines 2, 5); include more surrounding lines" in result.problems[0]


def test_more_context_resolves_the_ambiguity():
    files = {"a.py": "def f():\n    pass\n\ndef g():\n    pass\n"}
    result = apply_answer(edit("a.py", "def g():\n    pass\n", "def g():\n    return 1\n"), files)
    assert result.files == {"a.py": "def f():\n    pass\n\ndef g():\n    return 1\n"}


# -- applying: did you mean -----------------------------------------------------------------


def test_no_match_message_shows_the_search_and_the_closest_lines():
    result = apply_answer(edit("src/app.py", "def add(a, c):\n    return a - c\n", "x\n"), {"src/app.py": APP})
    assert result.problems == [
        "The SEARCH section for src/app.py does not match the file. It searched for:\n"
        "```\ndef add(a, c):\n    return a - c\n```\n"
        "Did you mean lines 4-5 of src/app.py?\n"
        "```\ndef add(a, b):\n    return a - b\n```\n"
        "The SEARCH section must copy existing lines exactly, comments and docstrings included;"
        " resend this block with its SEARCH section fixed."
    ]


def test_did_you_mean_single_line():
    result = apply_answer(edit("src/app.py", "    return a * c\n", "x\n"), {"src/app.py": APP})
    assert "Did you mean line 9 of src/app.py?\n```\n    return a * b\n```" in result.problems[0]


def test_did_you_mean_finds_the_chunk_in_a_large_file():
    lines = [f"def handler_{number}(request):\n    return respond(request, {number})\n" for number in range(10_000)]
    files = {"big.py": "".join(lines)}
    search = "def handler_7345(request):\n    return respond(requst, 7345)\n"
    result = apply_answer(edit("big.py", search, "pass\n"), files)
    assert (
        "Did you mean lines 14691-14692 of big.py?\n"
        "```\ndef handler_7345(request):\n    return respond(request, 7345)\n```" in result.problems[0]
    )


def test_did_you_mean_shows_the_file_lines_verbatim():
    files = {"a.py": "if ok:\n    call(1, 2)   \n"}
    result = apply_answer(edit("a.py", "call(1, 3)\n", "call(1, 4)\n"), files)
    assert "Did you mean line 2 of a.py?\n```\n    call(1, 2)   \n```" in result.problems[0]


def test_nothing_similar():
    result = apply_answer(edit("a.py", "completely different text\n", "x\n"), {"a.py": "import os\n"})
    assert "No lines of a.py are similar to it." in result.problems[0]
    assert "Did you mean" not in result.problems[0]


def test_search_in_an_empty_file():
    result = apply_answer(edit("a.py", "x = 1\n", "x = 2\n"), {"a.py": ""})
    assert "a.py is empty; to fill it, use an empty SEARCH section." in result.problems[0]


def test_replace_lines_already_present_are_pointed_out():
    result = apply_answer(edit("src/app.py", "    return a + bb\n", "    return a * b\n"), {"src/app.py": APP})
    assert "The REPLACE lines are already in src/app.py; if this change is made already, drop this block." in (
        result.problems[0]
    )


def test_replace_text_inside_a_longer_line_is_not_pointed_out():
    result = apply_answer(edit("a.py", "x = compute(1)\n", "compute\n"), {"a.py": "y = compute(2)\n"})
    assert "already in" not in result.problems[0]


def test_elided_search_is_pointed_out():
    search = "def add(a, b):\n    ...\n"
    result = apply_answer(edit("src/app.py", search, "def add(a, b):\n    return 0\n"), {"src/app.py": APP})
    assert "Do not shorten a SEARCH section with '...': copy every line it spans." in result.problems[0]


def test_long_search_is_shortened_in_the_message():
    search = "".join(f"line {number} that is not in the file\n" for number in range(100))
    result = apply_answer(edit("a.py", search, "x\n"), {"a.py": "x = 1\n"})
    assert "line 29 that is not in the file\n```\n(70 more lines not shown)" in result.problems[0]
    assert "line 30 that is not in the file" not in result.problems[0]


def test_message_fence_is_longer_than_fences_in_the_file():
    files = {"README.md": "Install:\n\n```sh\npip install thing\n```\n"}
    result = apply_answer(edit("README.md", "```sh\npip install thing2\n```\n", "x\n"), files)
    assert "Did you mean lines 3-5 of README.md?\n````\n```sh\npip install thing\n```\n````" in result.problems[0]


def test_failed_block_does_not_stop_the_others():
    answer = (
        edit("a.py", "x = 1\n", "x = 2\n")
        + edit("a.py", "nope\n", "still nope\n")
        + edit("a.py", "y = 1\n", "y = 2\n")
    )
    result = apply_answer(answer, {"a.py": "x = 1\ny = 1\n"})
    assert result.files == {"a.py": "x = 2\ny = 2\n"}
    assert result.applied == 2 and len(result.problems) == 1


# -- applying: paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "/etc/passwd is an absolute path; use the path relative to the repository root."),
        ("~/.bashrc", "~/.bashrc is an absolute path; use the path relative to the repository root."),
        ("C:\\repo\\a.py", "C:\\repo\\a.py is an absolute path; use the path relative to the repository root."),
        ("C:/repo/a.py", "C:/repo/a.py is an absolute path; use the path relative to the repository root."),
        ("src\\a.py", "src\\a.py uses backslashes; write repository-relative paths with forward slashes."),
        ("../outside.py", "../outside.py points outside the repository ('..' is not allowed); use a path inside it."),
        ("src/../../x.py", "src/../../x.py points outside the repository ('..' is not allowed); use a path inside it."),
        (".git/config", ".git/config is inside .git/, which may not be edited."),
        (".git/hooks/pre-commit", ".git/hooks/pre-commit is inside .git/, which may not be edited."),
        ("vendor/lib/.git/config", "vendor/lib/.git/config is inside .git/, which may not be edited."),
        ("src/", "src/ names a directory, not a file."),
        ("./", "./ names a directory, not a file."),
        ("a\x00b.py", "'a\\x00b.py' is not a usable file path (it contains control characters)."),
    ],
)
def test_unsafe_paths_are_refused(path, problem):
    reads = []
    result = apply_edits([EditBlock(path, "", "x\n")], lambda p: reads.append(p))
    assert result == ApplyResult(files={}, problems=[problem], applied=0)
    assert reads == []


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("./src/a.py", "src/a.py"),
        ("src//a.py", "src/a.py"),
        ("src/./a.py", "src/a.py"),
        (".gitignore", ".gitignore"),
        (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
        ("docs/..hidden/x.md", "docs/..hidden/x.md"),
        ("my dir/a file.txt", "my dir/a file.txt"),
    ],
)
def test_paths_are_normalized(written, normal):
    assert normalize_path(written) == (normal, None)
    assert apply_edits([EditBlock(written, "", "x\n")], {}.get).files == {normal: "x\n"}


def test_differently_written_paths_to_one_file_share_its_state():
    blocks = [EditBlock("./a.py", "x = 1\n", "x = 2\n"), EditBlock("a.py", "x = 2\n", "x = 3\n")]
    assert apply_edits(blocks, {"a.py": "x = 1\n"}.get).files == {"a.py": "x = 3\n"}


def test_refuse_reason_is_reported_verbatim_and_other_blocks_apply():
    asked = []

    def refuse(path):
        asked.append(path)
        return "existing tests are read-only; change the code instead" if path.startswith("tests/") else None

    files = {"tests/test_app.py": "assert add(1, 1) == 0\n", "src/app.py": APP}
    answer = (
        edit("./tests/test_app.py", "assert add(1, 1) == 0\n", "assert add(1, 1) == 2\n")
        + edit("src/app.py", "    return a - b\n", "    return a + b\n")
    )
    result = apply_answer(answer, files, refuse)
    assert result.problems == [
        "Edit to tests/test_app.py refused: existing tests are read-only; change the code instead"
    ]
    assert result.files == {"src/app.py": APP.replace("a - b", "a + b")}
    assert result.applied == 1
    assert asked == ["tests/test_app.py", "src/app.py"]


def test_refused_path_is_not_read():
    reads = []

    def read_file(path):
        reads.append(path)
        return "x\n"

    apply_edits([EditBlock("secret.txt", "x\n", "y\n")], read_file, lambda path: "protected by .agentcoder.yml")
    assert reads == []


def test_each_file_is_read_once():
    reads = []

    def read_file(path):
        reads.append(path)
        return {"a.py": "a\nb\n"}.get(path)

    blocks = [EditBlock("a.py", "a\n", "A\n"), EditBlock("a.py", "b\n", "B\n"), EditBlock("new.py", "", "n\n")]
    assert apply_edits(blocks, read_file).files == {"a.py": "A\nB\n", "new.py": "n\n"}
    assert reads == ["a.py", "new.py"]


def test_unreadable_path_becomes_a_problem():
    def read_file(path):
        raise IsADirectoryError(21, "Is a directory", path)

    result = apply_edits([EditBlock("src", "x\n", "y\n")], read_file)
    assert result.problems == [
        "src could not be read ([Errno 21] Is a directory: 'src'); edit a text file inside the repository."
    ]


# -- end to end and feedback ----------------------------------------------------------------


def test_realistic_answer_end_to_end():
    answer = """\
Plan: fix the sign in `add`, add a `sub` helper, and export it.

**src/app.py**
```python
<<<<<<< SEARCH
def add(a, b):
    return a - b
=======
def add(a, b):
    return a + b


def sub(a, b):
    return a - b
>>>>>>> REPLACE
```

```python
src/__init__.py
<<<<<<< SEARCH
=======
from .app import add, sub

__all__ = ["add", "sub"]
>>>>>>> REPLACE
```

This keeps `mul` unchanged.
"""
    result = apply_answer(answer, {"src/app.py": APP})
    assert result.problems == [] and result.applied == 2
    assert result.files == {
        "src/app.py": APP.replace(
            "    return a - b\n", "    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
        ),
        "src/__init__.py": 'from .app import add, sub\n\n__all__ = ["add", "sub"]\n',
    }


def test_describe_no_problems():
    assert describe_problems([]) == ""


def test_describe_problems_numbers_each_one():
    text = describe_problems(["First thing.", "Second\nthing."])
    assert text == (
        "2 problems with your SEARCH/REPLACE blocks:\n\n"
        "## Problem 1 of 2\nFirst thing.\n\n"
        "## Problem 2 of 2\nSecond\nthing.\n\n"
        "Blocks not mentioned above were applied: do not send them again."
        " Reply with corrected SEARCH/REPLACE blocks for the problems above only."
    )


def test_describe_one_problem_from_parse_and_apply():
    answer = edit("a.py", "missing\n", "x\n") + "b.py\n<<<<<<< SEARCH\ncut"
    parsed = parse_edit_blocks(answer)
    applied = apply_edits(parsed.blocks, {"a.py": "present\n"}.get)
    text = describe_problems(parsed.problems + applied.problems)
    assert text.startswith(
        "2 problems with your SEARCH/REPLACE blocks:\n\n## Problem 1 of 2\nThe SEARCH/REPLACE block for b.py"
    )
    assert "## Problem 2 of 2\nThe SEARCH section for a.py does not match the file." in text


def test_garbage_never_raises():
    pieces = [
        "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE", "```", "```python", "a.py", "../x", "/abs", ".git/x",
        "", "   ", "x = 1", "    y = 2", "...", "**b.py**", "\r", "<<<<<", ">>>>>>>>> REPLACE", "🙂",
    ]
    files = {"a.py": "x = 1\n    y = 2\n", "b.py": ""}
    generator = random.Random(20231221)
    for _ in range(2000):
        answer = "\n".join(generator.choice(pieces) for _ in range(generator.randint(0, 25)))
        parsed = parse_edit_blocks(answer)
        result = apply_edits(parsed.blocks, files.get, lambda path: "no" if path == "b.py" else None)
        assert all(isinstance(problem, str) and problem for problem in parsed.problems + result.problems)
        assert result.applied + len(result.problems) == len(parsed.blocks)
        assert isinstance(describe_problems(parsed.problems + result.problems), str)

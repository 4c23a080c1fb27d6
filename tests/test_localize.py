"""Localization by the programmer's model: parsing its answers, and the two requests over real HTTP."""

from __future__ import annotations

from bot.dev.openai_server import ScriptedOpenAI
from bot.loop.context import SourceFile
from bot.loop.localize import Localizer, parse_files, parse_symbols
from bot.outside.model import ModelClient

MODULE = ("import re\n\n\nclass Parser:\n    \"\"\"Parses.\"\"\"\n\n    def feed(self, data):\n        return data\n\n"
          "    def close(self):\n        return None\n\n\ndef parse(text):\n    return Parser().feed(text)\n")
FILES = [SourceFile("src/pkg/parser.py", MODULE), SourceFile("src/pkg/util.py", "def helper():\n    return 1\n"),
         SourceFile("tests/test_parser.py", "def test_parse():\n    pass\n")]


def test_files_are_recognised_in_many_spellings_and_made_up_ones_dropped():
    known = [source.path for source in FILES]
    answer = "```\n1. `src/pkg/parser.py`\n- pkg/util.py\nsrc/pkg/imaginary.py\n./src/pkg/parser.py\n```"
    assert parse_files(answer, known) == ["src/pkg/parser.py", "src/pkg/util.py"]
    assert parse_files("The bug is in nowhere.py and made/up/path.py", known) == []


def test_symbols_as_path_colon_name_or_labelled_lines_and_unknown_ones_dropped():
    answer = ("```\nsrc/pkg/parser.py:Parser.close\nsrc/pkg/parser.py:Parser.missing\n"
              "src/pkg/parser.py\nfunction: parse\nclass: Parser\nfunction: nowhere\n```")
    assert parse_symbols(answer, {"src/pkg/parser.py": MODULE}) == {"src/pkg/parser.py": ["Parser.close", "parse",
                                                                                         "Parser"]}


def test_the_model_names_files_then_symbols_and_both_requests_count_as_the_programmers():
    with ScriptedOpenAI({"coder": ["```\nsrc/pkg/parser.py\n```", "```\nsrc/pkg/parser.py:Parser.feed\n```"]}) as server:
        client = ModelClient({"programmer": "coder", "test_designer": "tester"}, base_url=server.base_url,
                             max_retries=0)
        found = Localizer(client).localize("feed drops data", "Parser.feed loses bytes", FILES, "src/pkg/parser.py",
                                           20_000)
        first, second = (request["messages"][0]["content"] for request in server.requests_for("coder"))
    assert found.problem is None and len(found.replies) == 2
    assert found.focus.files == ("src/pkg/parser.py",)
    assert found.focus.symbols_in("src/pkg/parser.py") == ("Parser.feed",)
    assert "feed drops data" in first and "src/pkg/parser.py" in first
    assert "def feed(self, data):" in second and "return data" not in second  # a skeleton, bodies hidden


def test_an_answer_naming_files_that_do_not_exist_falls_back_to_the_ranking():
    with ScriptedOpenAI({"coder": ["The problem is in `core/engine.py` and `lib/missing.py`."]}) as server:
        client = ModelClient({"programmer": "coder", "test_designer": "tester"}, base_url=server.base_url,
                             max_retries=0)
        found = Localizer(client).localize("t", "b", FILES, "map", 20_000)
        assert len(server.requests_for("coder")) == 1
    assert not found.focus and "named no Python file" in found.problem

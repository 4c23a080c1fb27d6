"""The programmer's READ requests: parsing (pure), answering (one line for what cannot be read), real files."""

from __future__ import annotations

import os

from bot.loop.reads import MAX_READS_PER_ANSWER, ReadRequest, answer_reads, parse_reads
from bot.outside.workspace import Workspace
from tests.conftest import make_repo

MODULE = "import os\n\n\nclass Box:\n    def open(self):\n        return 1\n\n    def close(self):\n        return 2\n\n\ndef helper():\n    return 3\n"


def reader(files):
    def read(path):
        if path in files:
            return files[path], None
        return None, f"{path} does not exist in the repository"
    return read


def test_read_lines_are_parsed_beside_blocks_and_lines_inside_blocks_are_code():
    answer = ("I need more context.\nREAD pkg/box.py:Box.close\n  READ `pkg/util.py`\nREAD pkg/box.py:Box.close\n"
              "pkg/box.py\n<<<<<<< SEARCH\nREAD not/a/request.py\n=======\nx = 1\n>>>>>>> REPLACE\n"
              "Please READ the docs first.\n**READ docs/a.py**\n")
    assert parse_reads(answer) == [ReadRequest("pkg/box.py", "Box.close"), ReadRequest("pkg/util.py"),
                                   ReadRequest("docs/a.py")]
    assert parse_reads("no requests here") == []


def test_a_symbol_is_answered_with_its_code_and_its_class_signature():
    text = answer_reads([ReadRequest("pkg/box.py", "Box.close")], reader({"pkg/box.py": MODULE}), 10_000)
    assert "class Box:" in text and "    def close(self):\n        return 2" in text
    assert "def helper" not in text and "not shown" in text


def test_each_bad_read_gets_a_one_line_answer():
    requests = [ReadRequest("missing.py"), ReadRequest("../etc/passwd"), ReadRequest("/etc/passwd"),
                ReadRequest("pkg/box.py", "Nope"), ReadRequest(".git/config")]
    text = answer_reads(requests, reader({"pkg/box.py": MODULE}), 10_000)
    lines = [line for line in text.splitlines() if line.startswith("READ ")]
    assert len(lines) == 5
    assert "does not exist" in lines[0] and "outside the repository" in lines[1]
    assert "absolute path" in lines[2] and "has no class or function Nope" in lines[3] and ".git" in lines[4]


def test_a_hundred_reads_in_one_answer_are_bounded():
    answer = "\n".join(f"READ pkg/module_{index}.py" for index in range(100))
    requests = parse_reads(answer)
    assert len(requests) == 100
    files = {f"pkg/module_{index}.py": "x = 1\n" * 2000 for index in range(100)}
    text = answer_reads(requests, reader(files), 30_000)
    assert text.count("## pkg/module_") + text.count("context budget is spent") == MAX_READS_PER_ANSWER
    assert len(text) < 32_000
    assert f"{100 - MAX_READS_PER_ANSWER} were ignored" in text


def test_the_workspace_answers_missing_binary_symlink_and_outside_paths_in_one_line(tmp_path):
    root = make_repo(tmp_path / "repo", {"pkg/box.py": MODULE, "data.bin": ""})
    (root / "data.bin").write_bytes(b"\x00\x01binary")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-OUTSIDE-THE-REPOSITORY\n")
    os.symlink(str(secret), root / "link.py")
    os.symlink(str(root / "pkg"), root / "linkdir")
    workspace = Workspace(root)
    assert workspace.read_for_agent("pkg/box.py") == (MODULE, None)
    for path, reason in [("nope.py", "does not exist"), ("data.bin", "binary"), ("link.py", "symbolic link"),
                         ("linkdir/box.py", "symbolic link"), ("../outside.py", "outside the repository"),
                         ("pkg", "not a regular file")]:
        text, problem = workspace.read_for_agent(path)
        assert text is None and reason in problem and "\n" not in problem, (path, problem)
    answered = answer_reads(parse_reads("READ link.py\nREAD data.bin"), workspace.read_for_agent, 10_000)
    assert "TOP-SECRET" not in answered and "symbolic link" in answered

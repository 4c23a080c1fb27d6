"""Scripted models for `agentcoder bench swe`, served by the OpenAI stand-in: the gold answers, or nonsense.

The gold programmer answers each instance with its gold `patch` as SEARCH/REPLACE blocks; the gold test designer
answers with the real tests: the FAIL_TO_PASS tests of the module of the first one, as the `test_patch` leaves it,
with that module's imports, fixtures and helpers.
Requests are matched to instances by the issue title they carry. For trials by hand:

    python -m bot.dev.swe_gold --instances bot/bench/data/swe_sample.jsonl --repos DIR [--nonsense]

prints the `OPENAI_BASE_URL` to export and serves until interrupted.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.bench.swe import Instance, load_instances, patch_to_edit_blocks
from bot.bench.swe_run import InstanceSkipped, mirror_source
from bot.dev.openai_server import ScriptedOpenAI, message_text
from bot.loop.agents import Issue
from bot.outside.workspace import Workspace, WorkspaceError, temporary_directory

PROGRAMMER_MODEL, DESIGNER_MODEL = "swe-gold-coder", "swe-gold-tester"
NONSENSE = "I am not sure what you mean. The weather is lovely today; perhaps try turning it off and on again."


def only_tests(source: str, names: set[str]) -> str:
    """The module without its other top-level tests: imports, fixtures and helpers stay, verbatim."""
    lines = source.splitlines(keepends=True)
    for node in reversed(ast.parse(source).body):
        is_test = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
            node.name.startswith(("test", "Test"))
            or isinstance(node, ast.ClassDef) and any("TestCase" in ast.unparse(base) for base in node.bases))
        if is_test and node.name not in names:
            start = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            del lines[start - 1:node.end_lineno]
    return re.sub(r"\n{4,}", "\n\n\n", "".join(lines)).rstrip("\n") + "\n"


def absolute_imports(source: str, path: str) -> str:
    """Relative imports of a test module at `path` made absolute, so the module still imports from elsewhere."""
    package = path.rsplit("/", 1)[0].split("/") if "/" in path else []

    def absolute(match: re.Match) -> str:
        level, rest = len(match.group(2)), match.group(3)
        base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
        name = ".".join([*base, rest] if rest else base)
        return f"{match.group(1)}from {name} import"

    return re.sub(r"^(\s*)from (\.+)([\w.]*) import", absolute, source, flags=re.MULTILINE)


def real_test_module(instance: Instance, repos: Path | None) -> str:
    """The real FAIL_TO_PASS tests as one module: the test file of the first, as the test patch leaves it, keeping
    only those tests (a whole class for a method); empty when there is none."""
    path = instance.fail_to_pass[0].split("::")[0]
    names = {test.split("::")[1].split("[")[0] for test in instance.fail_to_pass
             if test.startswith(f"{path}::") and test.count("::") >= 1}
    with temporary_directory("agentcoder-gold-") as scratch:
        try:
            workspace = Workspace.clone_at(mirror_source(repos, instance), scratch / "repo", instance.base_commit)
            workspace.apply_patch(instance.test_patch)
        except (WorkspaceError, InstanceSkipped):
            return ""
        source = workspace.read(path) or ""
    try:
        return absolute_imports(only_tests(source, names), path)
    except SyntaxError:
        return source


def gold_answers(instances: Sequence[Instance], repos: Path | None) -> dict[str, tuple[str, str]]:
    """Issue title → (the programmer's answer, the test designer's answer)."""
    answers = {}
    for instance in instances:
        blocks = patch_to_edit_blocks(instance.patch)
        module = real_test_module(instance, repos) if instance.fail_to_pass and instance.test_patch else ""
        answers[Issue.from_text(instance.problem_statement).title] = (
            f"Plan: apply the fix of the upstream repository.\n\n{blocks}",
            f"The real test of this fix:\n\n```python\n{module}```\n" if module.strip() else NONSENSE,
        )
    return answers


def gold_model(answers: dict[str, tuple[str, str]]) -> Callable[[dict], str]:
    """The stand-in's answer function: the instance whose title the request carries, by the agent's model name."""

    def answer(request: dict) -> str:
        text = "".join(message_text(message) for message in request.get("messages", []))
        for title, (programmer, designer) in answers.items():
            if title in text:
                return designer if request.get("model") == DESIGNER_MODEL else programmer
        return NONSENSE

    return answer


def serve(argv: list[str] | None = None) -> int:
    """Serve the gold (or nonsense) model until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bot.dev.swe_gold", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=Path, required=True)
    parser.add_argument("--repos", type=Path)
    parser.add_argument("--nonsense", action="store_true", help="answer every request with nonsense")
    args = parser.parse_args(argv)
    answer = (lambda _request: NONSENSE) if args.nonsense else gold_model(
        gold_answers(load_instances(args.instances).instances, args.repos))
    with ScriptedOpenAI(default=answer) as server:
        print(f"export OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=scripted"
              f" AGENTCODER_PROGRAMMER_MODEL={PROGRAMMER_MODEL} AGENTCODER_TEST_DESIGNER_MODEL={DESIGNER_MODEL}",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(serve())

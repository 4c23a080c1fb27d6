"""The two model-backed agents of the paper: the programmer and the test designer.

The test designer sees the issue and the unchanged code (relevant source, fixtures, example tests);
nothing the programmer writes ever reaches it. Both talk to their own configured model through a `ChatModel`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from bot.loop.context import Context, Snippet
from bot.loop.designer_context import DesignerContext
from bot.loop.edits import ParseResult, parse_edit_blocks
from bot.loop.ports import ChatModel
from bot.loop.prompting import render
from bot.loop.reads import MAX_READS_PER_ANSWER, ReadRequest, parse_reads
from bot.loop.untrusted import fence_marks
from bot.outside.model import Reply, Role

MAX_ISSUE_CHARS = 20_000
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
_PLAN = re.compile(r"^\W*plan\W*:?\s*(.+)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Issue:
    """What the maintainers asked for."""

    title: str
    body: str
    number: int | None = None

    @classmethod
    def from_text(cls, text: str, number: int | None = None) -> Issue:
        """First non-empty line is the title, the rest the body (a Markdown heading marker is dropped)."""
        lines = text.strip().splitlines()
        title = lines[0].lstrip("# ").strip() if lines else ""
        return cls(title, "\n".join(lines[1:]).strip(), number)

    def is_empty(self) -> bool:
        """True when there is nothing to act on."""
        return not (self.title.strip() or self.body.strip())

    def trimmed(self) -> Issue:
        """The issue with an enormous body cut to what a prompt can hold, saying so."""
        if len(self.body) <= MAX_ISSUE_CHARS:
            return self
        return Issue(self.title, self.body[:MAX_ISSUE_CHARS] + "\n\n[issue text trimmed]", self.number)


@dataclass(frozen=True)
class TestDesign:
    """One answer of the test designer."""

    __test__ = False  # not a pytest test class

    code: str | None  # the pytest module, None when the answer held none
    reply: Reply
    problem: str | None = None


@dataclass(frozen=True)
class Proposal:
    """One answer of the programmer."""

    reply: Reply
    plan: str
    parsed: ParseResult
    reads: list[ReadRequest] = field(default_factory=list)


def extract_python_module(text: str) -> str | None:
    """The first fenced Python block (or the whole answer when it parses as Python on its own)."""
    match = _FENCE.search(text)
    if match:
        return match.group(1).strip() + "\n"
    stripped = text.strip()
    if stripped and "def test" in stripped:
        try:
            ast.parse(stripped)
            return stripped + "\n"
        except SyntaxError:
            return None
    return None


def extract_plan(text: str) -> str:
    """The programmer's `Plan:` line, or the first sentence of its answer."""
    match = _PLAN.search(text)
    plan = match.group(1) if match else next((line for line in text.splitlines() if line.strip()), "")
    plan = " ".join(plan.replace("*", "").split())
    return plan if len(plan) <= 300 else plan[:297] + "..."


def code_blocks(snippets: tuple[Snippet, ...]) -> list[dict]:
    """Snippets as the prompt templates show them, each with a fence longer than any in its text."""
    return [{"path": s.path, "text": s.text, "fence": fence_marks(s.text), "complete": s.complete,
             "symbols": list(s.symbols)} for s in snippets]


def test_explanations(code: str) -> dict[str, str]:
    """Test function name → its one-line docstring (or its name in words)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            doc = ast.get_docstring(node) or node.name.removeprefix("test_").replace("_", " ")
            out[node.name] = doc.strip().splitlines()[0] if doc.strip() else node.name
    return out


class TestDesigner:
    """Writes new pytest cases from the issue and the unchanged code, never from the programmer's work."""

    __test__ = False  # not a pytest test class

    def __init__(self, model: ChatModel):
        self.model = model

    def design(self, issue: Issue, view: DesignerContext, test_file: str, instructions: str = "",
               problem: str | None = None, previous: str | None = None) -> TestDesign:
        """Ask for a complete test module; `problem` and `previous` describe a module that could not be used."""
        prompt = render(
            Role.TEST_DESIGNER,
            issue_title=issue.title, issue_body=issue.body, instructions=instructions,
            repo_map=view.code.repo_map, files=code_blocks(view.code.snippets),
            fixtures=code_blocks(view.fixtures), examples=code_blocks(view.examples),
            test_file=test_file, problem=problem, previous=previous,
        )
        return self._module(prompt)

    def revise(self, issue: Issue, view: DesignerContext, test_file: str, current: str, review: list[str],
               instructions: str = "", problem: str | None = None, previous: str | None = None) -> TestDesign:
        """Revise its own module after the maintainers' review; `problem`/`previous`: an unusable revision."""
        prompt = render(
            "test_designer_revision",
            issue_title=issue.title, issue_body=issue.body, instructions=instructions,
            repo_map=view.code.repo_map, files=code_blocks(view.code.snippets), fixtures=code_blocks(view.fixtures),
            test_file=test_file, current=current, review=review, problem=problem, previous=previous,
        )
        return self._module(prompt)

    def _module(self, prompt: str) -> TestDesign:
        reply = self.model.complete(Role.TEST_DESIGNER, [{"role": "user", "content": prompt}])
        code = extract_python_module(reply.text)
        if code is None:
            return TestDesign(None, reply, "the answer held no ```python block with a pytest module")
        try:
            ast.parse(code)
        except SyntaxError as exc:
            return TestDesign(code, reply, f"the module does not parse: {exc.msg} (line {exc.lineno})")
        if not test_explanations(code):
            return TestDesign(code, reply, "the module defines no test functions")
        return TestDesign(code, reply)


@dataclass
class Programmer:
    """Proposes edits; keeps its conversation so each turn builds on the last."""

    model: ChatModel
    messages: list[dict] = field(default_factory=list)
    history_turns: int = 2

    def start(self, issue: Issue, context: Context, test_file: str,
              guidance: str = "", instructions: str = "", protected: tuple[str, ...] = (), failing_now: str = "") -> None:
        """Set up the first turn: the issue, the repository map, the relevant code (and what fails already)."""
        prompt = render(
            Role.PROGRAMMER,
            issue_title=issue.title, issue_body=issue.body, guidance=guidance, instructions=instructions,
            repo_map=context.repo_map, files=code_blocks(context.snippets), test_file=test_file,
            protected=list(protected), read_limit=MAX_READS_PER_ANSWER, failing_now=failing_now,
        )
        self.messages = [{"role": "user", "content": prompt}]

    def propose(self, feedback: str | None = None) -> Proposal:
        """One turn: send the feedback (if any) and parse the SEARCH/REPLACE blocks of the answer."""
        if feedback is not None:
            self.messages.append({"role": "user", "content": feedback})
        # Keep the first turn and the most recent exchanges: older drafts only crowd the context.
        keep = 1 + 2 * self.history_turns
        if len(self.messages) > keep:
            self.messages = self.messages[:1] + self.messages[-(keep - 1):]
        reply = self.model.complete(Role.PROGRAMMER, list(self.messages))
        self.messages.append({"role": "assistant", "content": reply.text})
        return Proposal(reply, extract_plan(reply.text), parse_edit_blocks(reply.text), parse_reads(reply.text))

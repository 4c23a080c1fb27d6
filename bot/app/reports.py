"""Outcome → Markdown: the iteration log, the PR body, and the comment when the loop did not succeed."""

from __future__ import annotations

import html
import re

from bot.loop.outcome import GeneratedTest, Outcome, TestRevision, TestSummary
from bot.loop.untrusted import fence, longest_backtick_run
from bot.outside.model import Role
from bot.sandbox.summary import counts_text

GITHUB_BODY_LIMIT = 65_536
EVIDENCE_BUDGET = 30_000  # of the PR body, for the generated tests' code and results; the log gets the rest
CODE_CHARS = 3_000
KIND_LABEL = {"fail_to_pass": "fail-to-pass", "regression": "regression", "unverified": "unverified"}


def _counts(summary: TestSummary) -> str:
    text = counts_text(summary.passed, summary.failed, summary.errors, summary.skipped, always_skipped=False)
    return text + (f" ({summary.problem_text})" if summary.problem_text else "")


_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"(#|\bGH-)(?=\d)", re.IGNORECASE)
# A closing keyword before an issue's URL (before `#123` the reference itself is broken already).
_CLOSING = re.compile(r"\b(?=(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+https?://)(\w)", re.IGNORECASE)
_ZWSP = "\u200b"


def dollars(cost: float | None) -> str:
    """`$0.0123`, or `unknown` when a model without a configured price was used."""
    return "unknown" if cost is None else f"${cost:.4f}"


def cost_note(outcome: Outcome) -> str:
    """` (cost $0.0123)` for a status comment, or nothing when the cost is unknown."""
    return "" if outcome.cost_usd is None else f" (cost {dollars(outcome.cost_usd)})"


def inert(text: str) -> str:
    """Text from a model or a repository made unable to mention people or teams, reference or close issues,
    or open HTML; a zero-width space breaks each `@name`, `#123` and closing keyword, as Dependabot does."""
    text = text.replace("<", "&lt;")
    text = _MENTION.sub("@" + _ZWSP, text)
    text = _REFERENCE.sub(lambda match: match.group(1) + _ZWSP, text)
    return _CLOSING.sub(lambda match: match.group(1) + _ZWSP, text)


def code(text: str) -> str:
    """An inline code span that holds `text` whatever backticks it has (mentions are not linked in code)."""
    text = " ".join(text.split())
    ticks = "`" * (longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def usage_table(outcome: Outcome) -> str:
    """Tokens, model time and cost per agent, and the test and loop time."""
    rows = ["| agent | calls | prompt tokens | completion tokens | model time | model | cost |",
            "|---|---:|---:|---:|---:|---|---:|"]
    for agent, usage in outcome.tokens.items():
        model = f"`{usage.model}`" if usage.model else "—"
        rows.append(f"| {agent.replace('_', ' ')} | {usage.calls} | {usage.prompt_tokens} | {usage.completion_tokens}"
                    f" | {usage.seconds:.1f} s | {model} | {dollars(usage.cost_usd)} |")
    rows.append(f"| test executor | — | — | — | {outcome.test_s:.1f} s | — | — |")
    unpriced = sorted({model for usage in outcome.tokens.values() if usage.cost_usd is None
                       for model in usage.model.split(", ")})
    cost = dollars(outcome.cost_usd) if not unpriced else f"unknown (no price configured for {', '.join(unpriced)})"
    rows.append(f"\nWall time {outcome.wall_s:.1f} s (loop overhead {outcome.overhead_s:.1f} s), "
                f"{outcome.total_tokens} tokens in all, cost {cost}.")
    return "\n".join(rows)


def generated_tests_list(outcome: Outcome, *, evidence_budget: int = EVIDENCE_BUDGET) -> str:
    """One line a generated test (id, fail-to-pass or regression, what it checks), then its evidence folded."""
    if not outcome.generated_tests:
        return "_No generated tests could be used; the change was judged by the existing suite only._"
    lines = [f"In `{outcome.test_file}`:"]
    lines += [f"- {code(test.id.split('::', 1)[-1])} ({KIND_LABEL[test.kind]}"
              f"{', revised on review' if test.revised else ''}): {inert(test.explanation)}"
              for test in outcome.generated_tests]
    if not outcome.reproduced:
        lines.append("\nNone of these tests fails on the unchanged code: they do not reproduce the issue.")
    folded, left_out = [], 0
    for test in outcome.generated_tests:
        block = evidence_block(test)
        if len(block) > evidence_budget:
            left_out += 1
            continue
        evidence_budget -= len(block)
        folded.append(block)
    if folded:
        lines += ["", "Evidence: each test's code, and what it did on the unchanged code and on the change.", ""]
        lines += folded
    if left_out:
        lines.append(f"_The evidence of {left_out} more test(s) was left out to fit GitHub's size limit;"
                     f" `{outcome.test_file}` on this branch holds their code._")
    return "\n".join(lines)


def _result(result: str, why: str) -> str:
    if not result:
        return "not run (no change was tested)\n"
    return f"**{result}**\n" + (f"\n{fence(why, 'text')}\n" if why else "")


def evidence_block(test: GeneratedTest) -> str:
    """One test, folded: its code, its result on the unchanged code (the failure that shows the issue), after."""
    name = html.escape(test.id.split("::", 1)[-1])
    after = f", {test.after} on the change" if test.after else ""
    after += " (revised on review)" if test.revised else ""
    code = test.code if len(test.code) <= CODE_CHARS else test.code[:CODE_CHARS] + "\n# ...[trimmed]"
    return "\n".join([
        f"<details><summary><code>{name}</code>: {KIND_LABEL[test.kind]}, {test.before or 'not run'} on the"
        f" unchanged code{after}</summary>",
        "",
        fence(code, "python") if code else "_(its code could not be found in the module)_",
        "",
        "On the unchanged code: " + _result(test.before, test.before_text),
        "On the change: " + _result(test.after, test.after_text),
        "</details>",
        "",
    ])


def markdown_log(outcome: Outcome, *, feedback_chars: int = 3_000) -> str:
    """The iteration log: baseline, test design, then per iteration plan, files, results and feedback."""
    out = [f"**Result:** {'resolved' if outcome.resolved else 'not resolved'} — {inert(outcome.stop_reason)}"]
    if outcome.baseline:
        out.append(f"**Baseline** (unchanged code): {_counts(outcome.baseline)}")
    for attempt in outcome.design_attempts:
        status = "usable" if attempt.problem is None else f"unusable: {inert(attempt.problem.splitlines()[0])}"
        out.append(f"**Test design, attempt {attempt.attempt}:** {status} ({attempt.tokens} tokens, {attempt.seconds:.1f} s)")
    for number, revision in enumerate(outcome.test_revisions, 1):
        out.append(revision_log(number, revision))
    for it in outcome.iterations:
        out.append(f"\n### Iteration {it.number}")
        out.append(f"- Plan: {inert(it.plan) if it.plan else '(none given)'}")
        out.append(f"- Files changed: {', '.join(code(path) for path in it.files_changed) or 'none'}")
        out.append(f"- Suite: {_counts(it.suite)}")
        out.append(f"- New tests: {_counts(it.new_tests)}")
        if it.regressions:
            out.append(f"- Newly failing: {', '.join(code(test) for test in it.regressions[:20])}")
        if it.edit_problems:
            out.append(f"- Edits refused: {len(it.edit_problems)} ({inert(it.edit_problems[0].splitlines()[0])})")
        tokens = it.tokens[Role.PROGRAMMER]
        out.append(f"- Programmer: {tokens.prompt_tokens} + {tokens.completion_tokens} tokens, {it.model_s:.1f} s;"
                   f" tests {it.test_s:.1f} s; iteration {it.wall_s:.1f} s")
        if it.feedback:
            text = it.feedback if len(it.feedback) <= feedback_chars else it.feedback[:feedback_chars] + "\n...[trimmed]"
            out.append(f"<details><summary>Failures fed back</summary>\n\n{fence(text, 'text')}\n\n</details>")
    for note in outcome.notes:
        out.append(f"\n> {inert(note.splitlines()[0])}" + ("\n\n" + fence("\n".join(note.splitlines()[1:]), "text") if "\n" in note else ""))
    out.append("\n" + usage_table(outcome))
    return "\n".join(out) + "\n"


def revision_log(number: int, revision: TestRevision) -> str:
    """One review of the generated tests: what was asked, what changed in the module, the new classification."""
    def names(items: list[str]) -> str:
        return ", ".join(code(name) for name in items)

    out = [f"\n### Test revision {number}", "Asked:", fence(revision.asked, "text")]
    if revision.attempts:
        out.append(f"- Test designer: {revision.attempts} attempt(s)")
    if not revision.accepted:
        problem = revision.problem.splitlines()[0].rstrip(":") if revision.problem else "no change"
        out.append(f"- Not applied ({inert(problem)}): the previous tests were kept")
    for label, items in (("Changed", revision.changed), ("Added", revision.added), ("Removed", revision.removed)):
        if items:
            out.append(f"- {label}: {names(items)}")
    moves = []
    for test_id, kind in revision.kinds_after.items():
        name = test_id.split("::", 1)[-1]
        was = revision.kinds_before.get(test_id)
        moves.append(f"{code(name)} {KIND_LABEL[was]} → {KIND_LABEL[kind]}" if was and was != kind
                     else f"{code(name)} {KIND_LABEL[kind]}" + ("" if was else " (new)"))
    if moves:
        out.append("- On the unchanged code now: " + "; ".join(moves))
    if revision.diff:
        out.append(f"<details><summary>Change to the test module</summary>\n\n{fence(revision.diff, 'diff')}\n\n</details>")
    return "\n".join(out)


def _fit(head: str, log: str, tail: str, limit: int) -> str:
    """Fold the log into <details>, trimming it so the whole body stays under `limit` characters.

    The cut falls between iterations, so no `<details>` or code fence is left open.
    """
    wrapper = "<details><summary>Iteration log</summary>\n\n{}\n\n</details>\n"
    room = limit - len(head) - len(tail) - len(wrapper) - 100
    if len(log) > room:
        cut = log.rfind("\n### Iteration", 0, max(room, 0))
        log = (log[:cut] if cut > 0 else "") + "\n\n…[the rest of the log was trimmed to fit GitHub's limit]"
    return head + wrapper.format(log) + tail


def hidden_text_note(outcome: Outcome) -> list[str]:
    """A line saying what hidden text was removed before the agents saw the issue, if any was."""
    if not outcome.hidden_text_removed:
        return []
    return [f"> **Note:** hidden text was removed before the agents read it ({'; '.join(outcome.hidden_text_removed)}):"
            " HTML comments and invisible characters never reach the models.", ""]


def look_here_note(outcome: Outcome) -> list[str]:
    """The lines of the change that run at import or exit of the package, or reach into pytest, if any."""
    if not outcome.look_here:
        return []
    return ["> **Look here first:** these lines run when the package is imported or the process exits, or reach"
            " into pytest, so they act outside what the tests checked:", ">",
            *[f"> - {code(line)}" for line in outcome.look_here], ""]


def pr_body(outcome: Outcome, *, limit: int = GITHUB_BODY_LIMIT - 1_000) -> str:
    """The draft PR's body: summary, `Fixes #N`, the generated tests, the folded log, tokens and time."""
    changed = ", ".join(code(path) for path in outcome.files_changed if path != outcome.test_file) or "no files"
    head = "\n".join([
        "## Summary",
        f"AgentCoder changed {changed} in {len(outcome.iterations)} iteration(s): {inert(outcome.stop_reason)}.",
        "",
        *hidden_text_note(outcome),
        *look_here_note(outcome),
        f"Fixes #{outcome.issue_number}" if outcome.issue_number is not None else "",
        "",
        "## Generated tests",
        generated_tests_list(outcome),
        "",
        "## Tokens and time",
        usage_table(outcome),
        "",
    ])
    tail = "\n<sub>Opened by AgentCoder. Comment `/agentcoder retry <guidance>` to run it again on this branch.</sub>\n"
    return _fit(head, markdown_log(outcome), tail, limit)


def failure_report(outcome: Outcome, branch: str | None, *, limit: int = GITHUB_BODY_LIMIT - 1_000) -> str:
    """What to tell the issue when the loop did not succeed, with the log and where the best attempt is."""
    head = f"AgentCoder could not resolve this issue: {inert(outcome.stop_reason)}{cost_note(outcome)}.\n\n"
    head += "".join(line + "\n" for line in hidden_text_note(outcome))
    if branch and outcome.files_changed:
        head += f"The best attempt (iteration {outcome.best_iteration}) is on branch `{branch}`.\n\n"
    return _fit(head, markdown_log(outcome), "", limit)

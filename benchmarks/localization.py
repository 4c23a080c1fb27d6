"""Localization benchmark: does the programmer's first request show the code each real fix changed?

For every real issue -> fix pair of `benchmarks/data/localization_pairs.json` the repository is read at
the fix's parent commit (straight from git objects: no checkout), the programmer's first request is
built exactly as the loop builds it and sent to the scripted OpenAI stand-in over real HTTP, and the
request is checked for every gold hunk (the lines the fix removed, or the two lines around an
insertion, contiguous and verbatim in the code part of the request). Printed per mode: the share of
pairs with every gold hunk visible, the share of gold hunks visible, the request size, and the time
to build the context.

Modes: `default` (the relevance ranking alone) and `oracle` (model localization, with a scripted
model that names the gold files, then the classes/functions enclosing the gold hunks).

The repositories stay outside the project. Fetch each pair's repository (its URL is in the JSON;
the search tool's `fetch` brings a snapshot) and clone it into one directory, named after the
repository:  git clone <snapshot or URL> REPOS/click   (likewise requests, attrs, jinja, marshmallow, rich)

    PYTHONPATH=. python3 benchmarks/localization.py --repos REPOS [--budget 12000] [--json]

Run it with PYTHONPATH pointing at an older checkout of this project to measure that code ("before"):
there only the `default` mode exists.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bot.dev.openai_server import ScriptedOpenAI
from bot.loop import context as context_module
from bot.loop.agents import Issue, Programmer
from bot.loop.context import SourceFile
from bot.outside.model import ModelClient

PAIRS = Path(__file__).parent / "data" / "localization_pairs.json"
MODEL = "benchmark-programmer"
MAX_BYTES = 1_000_000
NEW_CODE = hasattr(context_module, "build_context")
CODE_HEADINGS = ("# Code relevant to the issue", "# Files most relevant to the issue")


@dataclass
class Hunk:
    path: str
    line: int  # first line of the anchor in the parent's file
    anchor: list[str]  # the lines that must be visible: removed lines contiguous, or an insertion's neighbours
    contiguous: bool = True


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def files_at(repo: Path, commit: str) -> list[SourceFile]:
    """Every text file of the commit (symlinks, binaries and files over 1 MB left out, as the workspace does)."""
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).split("\0")
    entries = []
    for line in listing:
        if not line:
            continue
        meta, path = line.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000":
            entries.append((path, sha))
    batch = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input="".join(f"{sha}\n" for _, sha in entries).encode(),
                           capture_output=True, check=True).stdout
    out, offset = [], 0
    for path, _sha in entries:
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        data = batch[header_end + 1:header_end + 1 + size]
        offset = header_end + 1 + size + 1
        if size > MAX_BYTES or b"\0" in data:
            continue
        try:
            out.append(SourceFile(path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return sorted(out, key=lambda source: source.path)


def gold_hunks(repo: Path, parent: str, commit: str, paths: list[str], files: dict[str, str]) -> list[Hunk]:
    """The fix's hunks in the gold files, as the parent's lines that must be visible."""
    hunks = []
    diff = git(repo, "diff", "-U0", parent, commit, "--", *paths)
    current = None
    for line in diff.splitlines():
        if line.startswith("--- "):
            current = line[6:] if line.startswith("--- a/") else None
        match = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", line)
        if match and current in files:
            start, count = int(match.group(1)), int(match.group(2) or 1)
            lines = files[current].splitlines()
            if count:
                first, last = start, start + count - 1
                while first <= last and not lines[first - 1].strip():
                    first += 1
                while last >= first and not lines[last - 1].strip():
                    last -= 1
                if first <= last:
                    hunks.append(Hunk(current, first, lines[first - 1:last]))
                continue
            # An insertion after line `start`: the nearest non-blank lines before and after it must be visible.
            before = next((n for n in range(start, 0, -1) if lines[n - 1].strip()), None)
            after = next((n for n in range(start + 1, len(lines) + 1) if lines[n - 1].strip()), None)
            neighbours = [n for n in (before, after) if n is not None]
            if neighbours:
                hunks.append(Hunk(current, neighbours[0], [lines[n - 1] for n in neighbours], contiguous=False))
    return hunks


def visible(hunk: Hunk, code: str) -> bool:
    """The hunk's lines appear verbatim, as whole lines (contiguous for removed lines), in the code part."""
    padded = "\n" + code + "\n"
    if hunk.contiguous:
        return "\n" + "\n".join(hunk.anchor) + "\n" in padded
    return all("\n" + line + "\n" in padded for line in hunk.anchor)


def oracle_answers(hunks: list[Hunk], files: dict[str, str]) -> tuple[str, str]:
    """What a perfect localizer answers: the gold files, then the classes/functions holding the gold hunks."""
    from bot.loop.symbols import outline
    paths = list(dict.fromkeys(hunk.path for hunk in hunks))
    locations = []
    for hunk in hunks:
        found = outline(files[hunk.path])
        symbol = found.enclosing(hunk.line) if found else None
        if symbol is not None:
            locations.append(f"{hunk.path}:{symbol.name}")
    return ("```\n" + "\n".join(paths) + "\n```", "```\n" + "\n".join(dict.fromkeys(locations)) + "\n```")


def first_request(sources: list[SourceFile], issue: Issue, budget_tokens: int, oracle: tuple[str, str] | None):
    """Build the first programmer request as the loop does; returns (request text, build seconds)."""
    budget = budget_tokens * 4
    query = f"{issue.title}\n{issue.body}"
    with ScriptedOpenAI() as server:
        client = ModelClient({"programmer": MODEL, "test_designer": MODEL}, base_url=server.base_url, max_retries=0)
        programmer = Programmer(client)
        if NEW_CODE:
            from bot.loop.localize import Localizer
            focus = None
            started = time.perf_counter()
            if oracle is not None:
                server.add(MODEL, *oracle)
                repo_map = context_module.build_context(sources, query, budget, title=issue.title).repo_map
                focus = Localizer(client).localize(issue.title, issue.body, sources, repo_map, budget).focus or None
            built = context_module.build_context(sources, query, budget, focus, title=issue.title)
            seconds = time.perf_counter() - started
            programmer.start(issue, built, "tests/agentcoder/test_issue.py")
        else:
            started = time.perf_counter()
            repo_map = context_module.repository_map(sources, budget // 4)
            relevant = context_module.relevant_files(sources, query, budget * 3 // 4)
            seconds = time.perf_counter() - started
            programmer.start(issue, repo_map, relevant, "tests/agentcoder/test_issue.py")
        server.add(MODEL, "Plan: nothing.")
        programmer.propose()
        request = server.requests_for(MODEL)[-1]["messages"][0]["content"]
        localization = [r["messages"][0]["content"] for r in server.requests_for(MODEL)[:-1]]
    return request, seconds, localization


def code_part(request: str) -> str:
    for heading in CODE_HEADINGS:
        if heading in request:
            return request[request.index(heading):]
    return ""


def run(repos: Path, budget: int, modes: list[str]) -> dict:
    pairs = json.loads(PAIRS.read_text())["pairs"]
    results = {mode: [] for mode in modes}
    for pair in pairs:
        repo = repos / pair["repository"].rstrip("/").rsplit("/", 1)[-1]
        if not (repo / ".git").exists() and not (repo / "HEAD").exists():
            raise SystemExit(f"{repo} is missing: clone {pair['repository']} there (see this script's docstring)")
        sources = files_at(repo, pair["parent_commit"])
        by_path = {source.path: source.text for source in sources}
        hunks = gold_hunks(repo, pair["parent_commit"], pair["fix_commit"], pair["gold_files"], by_path)
        issue = Issue(pair["issue_title"], pair["issue_body"])
        for mode in modes:
            oracle = oracle_answers(hunks, by_path) if mode == "oracle" else None
            request, seconds, localization = first_request(sources, issue, budget, oracle)
            code = code_part(request)
            seen = [visible(hunk, code) for hunk in hunks]
            results[mode].append({
                "id": pair["id"], "hunks": len(hunks), "visible": sum(seen), "all_visible": all(seen),
                "request_chars": len(request), "code_chars": len(code), "build_s": round(seconds, 4),
                "localization_chars": [len(text) for text in localization],
                "gold_files_in_request": [path for path in pair["gold_files"] if path in request],
            })
    return results


def summary(rows: list[dict]) -> dict:
    hunks = sum(row["hunks"] for row in rows)
    return {
        "pairs": len(rows),
        "pairs_all_hunks_visible": sum(row["all_visible"] for row in rows),
        "hunks_visible": f"{sum(row['visible'] for row in rows)}/{hunks}",
        "median_request_chars": int(statistics.median(row["request_chars"] for row in rows)),
        "max_request_chars": max(row["request_chars"] for row in rows),
        "median_build_s": round(statistics.median(row["build_s"] for row in rows), 4),
        "max_build_s": round(max(row["build_s"] for row in rows), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=Path, required=True, help="directory holding one clone per repository")
    parser.add_argument("--budget", type=int, default=12_000, help="context budget in tokens (the default setting)")
    parser.add_argument("--json", action="store_true", help="print every pair's figures as JSON")
    args = parser.parse_args()
    modes = ["default", "oracle"] if NEW_CODE else ["default"]
    results = run(args.repos, args.budget, modes)
    if args.json:
        print(json.dumps({mode: {"summary": summary(rows), "pairs": rows} for mode, rows in results.items()}, indent=1))
        return 0
    print(f"{'code':<8}{'mode':<9}{'pairs: all hunks visible':>26}{'hunks visible':>15}"
          f"{'request chars (median/max)':>28}{'build s (median/max)':>22}")
    for mode, rows in results.items():
        s = summary(rows)
        print(f"{'after' if NEW_CODE else 'before':<8}{mode:<9}"
              f"{s['pairs_all_hunks_visible']:>14}/{s['pairs']:<3} ({100 * s['pairs_all_hunks_visible'] / s['pairs']:.0f}%)"
              f"{s['hunks_visible']:>15}{s['median_request_chars']:>17,}/{s['max_request_chars']:<10,}"
              f"{s['median_build_s']:>12}/{s['max_build_s']}")
        missed = [row["id"] for row in rows if not row["all_visible"]]
        if missed:
            print(f"        {mode}: not every gold hunk visible in {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

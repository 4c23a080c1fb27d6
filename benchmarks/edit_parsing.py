"""How long parsing and applying SEARCH/REPLACE answers takes on pathological inputs (prints figures).

Targets: each 5 MB answer parses in under 0.5 s; 20,000 blocks in under 1 s; a "did you mean" search in a
20,000-line file in under 1 s. Run: python benchmarks/edit_parsing.py
"""

from __future__ import annotations

import statistics
import time

from bot.loop.edits import apply_edits, parse_edit_blocks


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def timed(label: str, target_s: float, action, repeat: int = 3) -> None:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"{label:<60} median {median:.3f} s  (target < {target_s} s){'' if median < target_s else '  OVER'}")


def main() -> None:
    prose = "The quick brown fox jumps over the lazy dog; SEARCH and REPLACE are just words here.\n" * 60_000
    markers = ("Lorem ipsum <<<<< dolor >>>>> sit amet\n=======\n" * 120_000) + block("a.py", "x\n", "y\n")
    blank = "\n" * 5_000_000 + "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    many = "".join(block(f"pkg/m{n}.py", f"a = {n}\n", f"a = {n + 1}\n") for n in range(20_000))
    big = "".join(f"def handler_{n}(request):\n    return respond(request, {n})\n" for n in range(10_000))
    near_miss = parse_edit_blocks(block("big.py", "def handler_7345(request):\n    return respond(requst, 7345)\n",
                                        "pass\n")).blocks
    timed("5 MB of prose", 0.5, lambda: parse_edit_blocks(prose))
    timed("5 MB of prose with markers, one block at the end", 0.5, lambda: parse_edit_blocks(markers))
    timed("5 MB of blank lines before a block", 0.5, lambda: parse_edit_blocks(blank))
    timed("20,000 blocks", 1.0, lambda: parse_edit_blocks(many))
    timed("'did you mean' in a 20,000-line file", 1.0,
          lambda: apply_edits(near_miss, {"big.py": big}.get, lambda path: None))


if __name__ == "__main__":
    main()

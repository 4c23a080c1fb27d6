"""A whole `agentcoder bench swe` run: instances in order, resumable from the predictions file, and its report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.bench.swe import (
    Instance,
    InstanceResult,
    Status,
    append_jsonl,
    earlier_results,
    predicted_ids,
    results_path,
)
from bot.bench.swe_run import SweRunner

Progress = Callable[[str], None]
AGENTS = ("programmer", "test_designer")


class PredictionsError(Exception):
    """The predictions file (or its results beside it) cannot be written; the message names it."""


class ModelUnreachable(Exception):
    """The first instance stopped on a model error before any answer: the model settings are wrong."""


def run_session(runner: SweRunner, instances: Sequence[Instance], malformed: Sequence[str],
                predictions: Path | None, progress: Progress = lambda _: None) -> dict:
    """Run every instance not yet in `predictions`, appending each prediction as it is made; the report."""
    started = time.monotonic()
    done = predicted_ids(predictions)
    earlier = earlier_results(results_path(predictions), done) if predictions else {}
    results: list[InstanceResult] = []
    model_checked = False
    for number, instance in enumerate(instances, start=1):
        prefix = f"[{number}/{len(instances)}] {instance.instance_id}"
        if instance.instance_id in done:
            record = earlier.get(instance.instance_id)
            result = (InstanceResult.from_json(record) if record else
                      InstanceResult(instance.instance_id, Status.COMPLETED, reason="predicted in an earlier run"))
            result.resumed = True
            results.append(result)
            progress(f"{prefix}: already in {predictions}, skipped")
            continue
        result, prediction = runner.run(instance, progress)
        # The first instance the loop ran tells whether the model answers at all; later errors are the instance's.
        if not model_checked and result.stop is not None:
            model_checked = True
            if result.stop == "model_error" and not any(result.tokens.values()):
                raise ModelUnreachable("the model did not answer: check OPENAI_BASE_URL, OPENAI_API_KEY and"
                                       " AGENTCODER_MODEL")
        if predictions is not None and prediction is not None:
            try:
                append_jsonl(predictions, prediction)
                append_jsonl(results_path(predictions), result.to_json())
            except OSError as exc:
                raise PredictionsError(f"cannot write --predictions {predictions}: {exc.strerror}") from exc
        results.append(result)
        progress(f"{prefix}: {progress_line(result)}")
    return session_report(runner.model_name, results, malformed, time.monotonic() - started)


def progress_line(result: InstanceResult) -> str:
    """One instance in a few words: the verdict, the loop's stop, iterations and time."""
    if result.status is Status.SKIPPED:
        return f"skipped: {result.reason}"
    verdict = {True: "resolved", False: "not resolved", None: "not scored"}[result.resolved]
    if result.status in {Status.ERROR, Status.SETUP_FAILED}:
        verdict = f"{result.status.value}: {result.reason}"
    designed = ""
    if result.designed is not None:
        designed = f", generated tests {result.designed.fail_to_pass} fail-to-pass"
    return (f"{verdict} (loop: {result.stop}, {result.iterations} iteration(s){designed},"
            f" {result.wall_s:.1f} s, sandbox {result.sandbox_s:.1f} s)")


def _sum_costs(results: Sequence[InstanceResult], agent: str) -> float | None:
    costs = [result.cost_usd.get(agent) for result in results if result.stop is not None]
    if not costs or any(cost is None for cost in costs):
        return None
    return round(sum(costs), 6)


def session_report(model: str, results: Sequence[InstanceResult], malformed: Sequence[str], duration_s: float) -> dict:
    """The `--json` object: every instance's record and the totals."""
    statuses = Counter(result.status for result in results)
    scored = [result for result in results if result.resolved is not None]
    resolved = sum(1 for result in scored if result.resolved)
    designed = [result.designed for result in results if result.designed is not None]
    reproduced = sum(1 for item in designed if item.fail_to_pass > 0)
    looped = [result for result in results if result.stop is not None]
    total = {
        "instances": len(results),
        "completed": statuses[Status.COMPLETED],
        "skipped": statuses[Status.SKIPPED],
        "errors": statuses[Status.ERROR],
        "setup_failed": statuses[Status.SETUP_FAILED],
        "malformed_lines": len(malformed),
        "resumed": sum(1 for result in results if result.resumed),
        "scored": len(scored),
        "resolved": resolved,
        "resolved_rate": round(resolved / len(results), 4) if results else None,
        "designer_instances": len(designed),
        "fail_to_pass_rate": round(reproduced / len(designed), 4) if designed else None,
        "designed_tests": {kind: sum(getattr(item, kind) for item in designed)
                           for kind in ("fail_to_pass", "regression", "wrong")},
        "stops": dict(Counter(result.stop for result in looped)),
        "iterations": {str(used): count for used, count in sorted(Counter(r.iterations for r in looped).items())},
        "tokens": {agent: sum(result.tokens.get(agent, 0) for result in looped) for agent in AGENTS},
        "cost_usd": {agent: _sum_costs(looped, agent) for agent in AGENTS},
        "wall_s": round(sum(result.wall_s for result in looped), 3),
        "loop_s": round(sum(result.loop_s for result in looped), 3),
        "sandbox_s": round(sum(result.sandbox_s for result in looped), 3),
        "duration_s": round(duration_s, 3),
    }
    return {"benchmark": "swe", "model": model, "malformed": list(malformed),
            "instances": [result.to_json() for result in results], "total": total}


def format_session(report: dict) -> str:
    """The report as text: the headline numbers, then each instance that was not resolved."""
    total = report["total"]
    rate = total["fail_to_pass_rate"]
    tokens, costs = total["tokens"], total["cost_usd"]
    cost = ("" if any(value is None for value in costs.values())
            else f" (${sum(costs.values()):.4f})")
    lines = [
        (f"swe ({report['model']}): resolved {total['resolved']} of {total['instances']}"
         f" ({(total['resolved_rate'] or 0):.1%}); scored {total['scored']}, skipped {total['skipped']},"
         f" errors {total['errors']}, setup failed {total['setup_failed']}, malformed lines {total['malformed_lines']}"),
        "test designer: " + (f"fail-to-pass rate {rate:.1%} of {total['designer_instances']} instance(s);"
                             f" generated tests {total['designed_tests']['fail_to_pass']} fail-to-pass,"
                             f" {total['designed_tests']['regression']} regression,"
                             f" {total['designed_tests']['wrong']} wrong" if rate is not None else "no gold patches"),
        (f"tokens: programmer {tokens['programmer']:,}, test designer {tokens['test_designer']:,}{cost};"
         f" instances {total['wall_s']:.1f} s (loop {total['loop_s']:.1f} s), sandbox {total['sandbox_s']:.1f} s,"
         f" run {total['duration_s']:.1f} s"),
    ]
    unresolved = [item for item in report["instances"] if not item["resolved"]]
    if unresolved:
        lines.append("not resolved:")
        lines += [f"  {item['instance_id']}: {item['status']}"
                  f"{': ' + item['reason'] if item['reason'] else ''} (loop: {item['stop']})" for item in unresolved]
    return "\n".join(lines)

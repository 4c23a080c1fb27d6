"""`agentcoder bench humaneval|mbpp`: score given completions, or solve each task with the loop and score that."""

from __future__ import annotations

from collections.abc import Callable

from bot.bench.agents import Progress, format_agents_report, run_agents
from bot.bench.protocol import run_score
from bot.bench.tasks import BenchInputError, agent_prompt, load_tasks
from bot.loop.agent_loop import AgentLoop
from bot.sandbox.executor import Sandbox

LoopMaker = Callable[[Progress], AgentLoop]


def run_bench(args, settings, sandbox: Sandbox, make_loop: LoopMaker | None,
              progress: Progress = lambda _: None) -> str | dict:
    """The report of `agentcoder bench NAME [--completions FILE] [--limit N] [--show-tests first|all] [--json]`.

    With `--completions`, score them; without, run the three-agent loop on each task (`make_loop` builds one)
    and score what it leaves. Raises BenchInputError, one line, for a usage error or a model that cannot be reached.
    """
    if args.completions is not None:
        return run_score(args.benchmark, args.completions, args.limit, args.json, sandbox, settings.sandbox_image)
    every_task = load_tasks(args.benchmark)
    if args.limit is not None and args.limit < 1:
        raise BenchInputError(f"--limit must be at least 1, not {args.limit}")
    if make_loop is None:
        raise BenchInputError("running the agents needs a model: set OPENAI_BASE_URL and AGENTCODER_MODEL")
    agent_prompt(every_task[0], args.show_tests)  # checks --show-tests
    tasks = every_task[: args.limit] if args.limit is not None else every_task
    report = run_agents(args.benchmark, tasks, sandbox, settings.sandbox_image, make_loop,
                        show_tests=args.show_tests, parallel=max(1, settings.concurrent_jobs), progress=progress)
    return report if args.json else format_agents_report(report)

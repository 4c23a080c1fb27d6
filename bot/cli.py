"""The `agentcoder` command: parses arguments, builds the collaborators, calls one entry point.

Exit status: 0 success, 1 the work ran but did not succeed, 2 usage or configuration error.
Errors the user can fix are printed as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or environment; printed as one line, exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentcoder", description="Fix labelled GitHub issues with the AgentCoder loop.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="webhook receiver and embedded workers (the main job)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    commands.add_parser("worker", help="workers only, for scale-out against a shared database")
    commands.add_parser("migrate", help="create or update the job database's schema (idempotent; serve and worker do it too)")

    check = commands.add_parser("check", help="run a repository's suite in the sandbox exactly as the bot would")
    check.add_argument("path", type=Path)
    check.add_argument("--json", action="store_true", help="print one JSON object")

    fix = commands.add_parser("fix", help="run the whole loop on a local git checkout, no GitHub")
    fix.add_argument("path", type=Path)
    source = fix.add_mutually_exclusive_group(required=True)
    source.add_argument("--issue-file", type=Path)
    source.add_argument("--issue")
    fix.add_argument("--json-log", type=Path, help="write the iteration log as JSON to this file")

    bench = commands.add_parser("bench", help="benchmarks: HumanEval or MBPP (the paper's protocol), SWE-bench's format")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name in ("humaneval", "mbpp"):
        paper = benchmarks.add_parser(name, help=f"{name} with the paper's protocol, in the sandbox")
        paper.add_argument("--completions", type=Path, help="JSONL of {task_id, completion} to score")
        paper.add_argument("--limit", type=int, help="only the first N tasks")
        paper.add_argument("--show-tests", choices=["first", "all"], default="first",
                           help="MBPP agent runs: show the first assert (default) or all three")
        paper.add_argument("--json", action="store_true")
    swe = benchmarks.add_parser("swe", help="repository-level instances in SWE-bench's format")
    swe.add_argument("--instances", type=Path, required=True, help="JSONL of SWE-bench task instances")
    swe.add_argument("--repos", type=Path, help="directory of mirrors DIR/<owner>__<name> (default: clone from GitHub)")
    swe.add_argument("--limit", type=int, help="only the first N instances")
    swe.add_argument("--predictions", type=Path,
                     help="append predictions here in SWE-bench's format; instances already in it are skipped")
    swe.add_argument("--json", action="store_true")

    register = commands.add_parser("register", help="register the GitHub App from app.yml (the manifest flow)")
    register.add_argument("--out", type=Path, default=Path("agentcoder-app.env"),
                          help="credentials file to write (mode 0600; default agentcoder-app.env)")
    register.add_argument("--org", help="register the App for this organisation instead of your user")
    register.add_argument("--webhook-url", help="where GitHub will send webhooks (…/webhooks); default app.yml's")
    register.add_argument("--manifest", type=Path, default=Path(__file__).resolve().parent.parent / "app.yml")
    register.add_argument("--host", default="127.0.0.1")
    register.add_argument("--port", type=int, default=3000)

    playground = commands.add_parser("playground", help="the whole App flow offline: stand-in GitHub, sample repo, issue → PR")
    playground.add_argument("--json", action="store_true")
    playground.add_argument("--dashboard", action="store_true",
                            help="afterwards keep serving the dashboard (and /metrics) until interrupted")
    return parser


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder check PATH`: the repository's suite in the sandbox, summarised."""
    from bot.repo_config import RepoConfigError, load_repo_config

    repo = args.path
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    try:
        config = load_repo_config(repo)
    except RepoConfigError as exc:
        raise UsageError(str(exc)) from exc
    # Imported only now: a bad path or config is refused before the second the App's modules take to import.
    from bot import composition
    from bot.sandbox.executor import SetupFailed
    from bot.sandbox.summary import format_run

    sandbox = composition.build_sandbox(settings)
    try:
        result = sandbox.run_tests(repo, config)
    except SetupFailed as exc:
        if args.json:
            print(json.dumps({"setup_failed": True, "setup_log": exc.log_tail, "passed": 0, "failed": 0,
                              "errors": 0, "skipped": 0, "tests": [], "duration_s": 0.0}))
        else:
            print(f"setup failed: installing {repo} in the sandbox did not work. Last lines of the setup log:")
            print(exc.log_tail)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(format_run(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def _progress(message: object) -> None:
    print(f"[agentcoder] {message}", file=sys.stderr, flush=True)


def cmd_fix(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder fix PATH`: the whole loop on a local checkout; the result lands on a new branch."""
    from bot.loop.agents import Issue
    from bot.outside.workspace import Workspace, WorkspaceError, temporary_directory
    from bot.repo_config import RepoConfigError, load_repo_config

    if not args.path.is_dir():
        raise UsageError(f"{args.path} is not a directory")
    if args.issue_file is not None:
        try:
            text = args.issue_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read --issue-file {args.issue_file}: {exc.strerror}") from exc
    else:
        text = args.issue
    issue = Issue.from_text(text)
    uncommitted = Workspace.uncommitted_changes(args.path)
    if uncommitted:
        named = ", ".join(uncommitted[:5]) + (f" and {len(uncommitted) - 5} more" if len(uncommitted) > 5 else "")
        print(f"agentcoder fix: the fix starts from the checkout's HEAD; uncommitted changes are not used ({named})."
              " Commit them first to include them.", file=sys.stderr)
    with temporary_directory("agentcoder-fix-") as scratch:
        try:
            workspace = Workspace.clone_local(args.path, scratch / "work")
            load_repo_config(workspace.path)  # a malformed .agentcoder.yml is a usage error, found before any set-up
        except (WorkspaceError, RepoConfigError) as exc:
            raise UsageError(str(exc)) from exc
        # Imported only now: a bad config is refused before the second the loop's modules take to import.
        from bot import composition
        from bot.app.reports import markdown_log
        from bot.loop.fix import NotFixable, branch_for, run_fix

        try:
            model = composition.build_model(settings)
            loop = composition.build_loop(settings, composition.build_sandbox(settings), model, progress=_progress)
            outcome = run_fix(loop, workspace, issue, branch_for(issue))
            if outcome.commit:
                workspace.publish_to_local(args.path, outcome.branch)
        except (NotFixable, WorkspaceError, RepoConfigError) as exc:
            raise UsageError(str(exc)) from exc
    print(markdown_log(outcome))
    if outcome.commit:
        print(f"The {'fix' if outcome.resolved else 'best attempt'} is on branch {outcome.branch} "
              f"(commit {outcome.commit[:12]}); your checkout's own branch and files are unchanged.")
    if args.json_log is not None:
        try:
            args.json_log.write_text(json.dumps(outcome.to_json(), indent=2))
        except OSError as exc:
            raise UsageError(f"cannot write --json-log {args.json_log}: {exc.strerror}") from exc
    return EXIT_OK if outcome.resolved else EXIT_FAILED


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder bench humaneval|mbpp`: score given completions, or run the agents, the paper's protocol."""
    if args.benchmark == "swe":  # before the imports below: its bad arguments are refused without them
        return cmd_bench_swe(args, settings)
    from bot import composition
    from bot.bench.run import BenchInputError, run_bench

    sandbox = composition.build_sandbox(settings)
    make_loop = None
    if args.completions is None:
        model = composition.build_model(settings)
        make_loop = lambda progress: composition.build_loop(settings, sandbox, model, progress=progress)
    try:
        out = run_bench(args, settings, sandbox, make_loop, progress=_progress)
    except BenchInputError as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps(out) if isinstance(out, dict) else out)
    return EXIT_OK


def cmd_bench_swe(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder bench swe`: the App's loop on SWE-bench instances, predictions in SWE-bench's format, scores."""
    from bot.bench.swe import InstancesError, load_instances

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    if args.repos is not None and not args.repos.is_dir():
        raise UsageError(f"--repos {args.repos} is not a directory")
    if args.predictions is not None and not args.predictions.parent.is_dir():
        raise UsageError(f"--predictions {args.predictions}: its directory does not exist")
    try:
        loaded = load_instances(args.instances)
    except InstancesError as exc:
        raise UsageError(str(exc)) from exc
    for problem in loaded.malformed:
        _progress(f"{args.instances}: {problem} (skipped)")
    if not loaded.instances:
        raise UsageError(f"--instances {args.instances} holds no valid instance")
    instances = loaded.instances[: args.limit] if args.limit is not None else loaded.instances
    # Imported only now: bad arguments are refused before the second the loop's modules take to import.
    from bot import composition
    from bot.bench.swe_run import SweRunner
    from bot.bench.swe_session import (
        ModelUnreachable,
        PredictionsError,
        format_session,
        run_session,
    )

    model = composition.build_model(settings)
    sandbox = composition.build_sandbox(settings)
    name = settings.programmer_model_name
    if settings.test_designer_model_name != name:
        name = f"{name}+{settings.test_designer_model_name}"
    runner = SweRunner(sandbox, lambda progress: composition.build_loop(settings, sandbox, model, progress=progress),
                       name, args.repos)
    try:
        report = run_session(runner, instances, loaded.malformed, args.predictions, progress=_progress)
    except (ModelUnreachable, PredictionsError) as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps(report) if args.json else format_session(report))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder serve`: the webhook edge and (unless AGENTCODER_CONCURRENT_JOBS=0) workers, until SIGTERM."""
    service = _service(settings)
    import uvicorn  # only now: missing or bad App settings are refused without it

    _configure_logging()  # after start-up, whose errors stay one line
    if service.pool is not None:
        service.pool.start()
    jobs = (f"running {settings.concurrent_jobs} job(s) at a time" if service.pool is not None
            else "running no jobs (AGENTCODER_CONCURRENT_JOBS=0: `agentcoder worker` processes run them)")
    _progress(f"serving webhooks for {service.bot_login} on http://{args.host}:{args.port}/webhooks, {jobs}")
    try:
        uvicorn.run(service.web, host=args.host, port=args.port, log_level="info")  # returns on SIGTERM/SIGINT
    finally:
        if service.pool is not None:
            service.pool.stop(settings.shutdown_grace_s)
        service.queue.close()
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder worker`: workers only, draining the shared queue until SIGTERM (running jobs finish or go back)."""
    import signal
    import threading

    from bot.app.queue import database_label

    if settings.concurrent_jobs < 1:
        raise UsageError("AGENTCODER_CONCURRENT_JOBS: `agentcoder worker` needs at least 1 job at a time")
    service = _service(settings, recover=False)
    _configure_logging()  # after start-up, whose errors stay one line
    assert service.pool is not None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.pool.start()
    _progress(f"worker for {service.bot_login} draining {database_label(settings.database_url)},"
              f" {settings.concurrent_jobs} job(s) at a time")
    try:
        stop.wait()
        _progress(f"stopping: running jobs have {settings.shutdown_grace_s:g} s to finish, then go back to the queue")
    finally:
        service.pool.stop(settings.shutdown_grace_s)
        service.queue.close()
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder migrate`: bring the job database's schema up to date (safe to run again)."""
    from bot.app.engines import migrate_database
    from bot.app.queue import database_label

    applied = migrate_database(settings.database_url)
    where = database_label(settings.database_url)
    print(f"{where}: " + ("applied " + ", ".join(applied) if applied else "schema already up to date"))
    return EXIT_OK


def _configure_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The worker pool says once that the database is away and when it is back; psycopg's pool would repeat it.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per GitHub and model request otherwise


def _service(settings: Settings, recover: bool = True):
    settings.require_github_app()  # before the App's modules are imported: a refusal stays quick
    from bot import composition

    return composition.build_service(settings, recover=recover)


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder register`: the manifest flow; writes the App's credentials and prints the next command."""
    from bot.app.register import RegisterError, run_register

    try:
        registration = run_register(settings, args.out, app_yml=args.manifest, host=args.host, port=args.port,
                                    org=args.org, webhook_url=args.webhook_url,
                                    announce=lambda line: print(line, flush=True))
    except RegisterError as exc:
        print(f"agentcoder: register: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Registered {registration.slug} (App id {registration.app_id}): {registration.html_url}")
    print(f"Credentials written to {args.out} (readable only by you). Install the App on your repositories, then:")
    print(f"  set -a && . {args.out} && set +a && agentcoder serve", flush=True)
    return EXIT_OK


def cmd_playground(args: argparse.Namespace, settings: Settings) -> int:
    """`agentcoder playground`: the whole App flow offline, printing the PR the bot opened."""
    from bot import composition
    from bot.dev.playground import PlaygroundError, format_result, run_playground

    sandbox = composition.build_sandbox(settings)
    try:
        result = run_playground(settings, sandbox, progress=_progress,
                                keep_serving=_serve_dashboard(args.json) if args.dashboard else None)
    except PlaygroundError as exc:
        print(f"agentcoder: playground: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.dashboard:  # with --dashboard it was printed before serving
        print(json.dumps(result.to_json()) if args.json else format_result(result))
    return EXIT_OK if result.resolved else EXIT_FAILED


def _serve_dashboard(as_json: bool):
    """Print the result and the dashboard's address, then wait until Ctrl-C or SIGTERM."""
    import signal
    import threading

    def keep_serving(result, url: str, admin_token: str) -> None:
        print(json.dumps(result.to_json()) if as_json else _playground_text(result), flush=True)
        _progress(f"dashboard: {url} (admin token: {admin_token}); /metrics with 'Authorization: Bearer <token>'")
        _progress("serving until Ctrl-C")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass

    return keep_serving


def _playground_text(result) -> str:
    from bot.dev.playground import format_result

    return format_result(result)


COMMANDS = {"check": cmd_check, "fix": cmd_fix, "bench": cmd_bench, "serve": cmd_serve, "worker": cmd_worker,
            "migrate": cmd_migrate, "playground": cmd_playground, "register": cmd_register}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        return COMMANDS[args.command](args, settings)
    except (UsageError, ConfigError) as exc:
        print(f"agentcoder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("agentcoder: interrupted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

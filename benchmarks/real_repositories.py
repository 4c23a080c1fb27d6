"""Real repositories: `check`'s per-test outcomes against the same suite in a fresh host venv, with no `.agentcoder.yml`.

For each popular pure-Python library below (pinned by commit), the sandbox builds the environment image
with its zero-configuration setup (setup network `host`, for the package index) and runs the suite twice:
the first run includes the image build, the second reuses it. The host gets a fresh venv with the same
declared dependencies (recent pip, the same extras, groups and requirements files) and runs pytest with the
same report plugin. Printed per repository: packaging, agreement (tests with the same outcome on both
sides), first-run and cached-run times, host time, and the environment image's size.

The repositories stay outside the project. Fetch each one at the pinned commit into one directory, e.g.
`git clone https://github.com/python-attrs/attrs DIR/attrs && git -C DIR/attrs checkout c1dc5dcb`, then:

    python benchmarks/real_repositories.py DIR [--only attrs,click] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_settings  # noqa: E402
from bot.repo_config import load_repo_config  # noqa: E402
from bot.sandbox.executor import PLUGIN_DIR, PLUGIN_NAME, Sandbox, SetupFailed  # noqa: E402
from bot.sandbox.results import read_report  # noqa: E402
from bot.sandbox.setup_plan import plan_setup  # noqa: E402


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    commit: str
    packaging: str


REPOSITORIES = [
    Repository("attrs", "https://github.com/python-attrs/attrs", "c1dc5dcba16ed827aa6dcad896b41a3afedb4e32",
               "hatchling + hatch-vcs, dependency group tests"),
    Repository("humanize", "https://github.com/python-humanize/humanize", "c3a124cdeb272d7f63bc0aa66f79c6fbafd2fc6d",
               "hatchling + hatch-vcs, extra tests"),
    Repository("click", "https://github.com/pallets/click", "2c8cd3ac958a7eb316d67f2d316c27086c4c0369",
               "flit, dependency group tests"),
    Repository("itsdangerous", "https://github.com/pallets/itsdangerous", "672971d66a2ef9f85151e53283113f33d642dabd",
               "flit, dependency group tests"),
    Repository("more-itertools", "https://github.com/more-itertools/more-itertools",
               "2fe1b2eeb9d75f994113fe3ac76d14b6bcd6fb10", "flit, requirements/testing.txt"),
    Repository("cachetools", "https://github.com/tkem/cachetools", "28d4506f2a49d781ffbcecb095fa7aba5bb80aff",
               "setuptools, tox deps only"),
    Repository("dateutil", "https://github.com/dateutil/dateutil", "c981f9c7aa91b83cc9bd33a09ecee9e751b06e8d",
               "setuptools + setuptools_scm, requirements-dev.txt"),
    Repository("pluggy", "https://github.com/pytest-dev/pluggy", "e382e72789f8d791991c489d4322aa04e660b952",
               "setuptools + setuptools_scm, dependency group testing"),
    Repository("tomlkit", "https://github.com/python-poetry/tomlkit", "d8ed1e3cdb024dfc2c6f12b45a0dfd4d4d91f727",
               "poetry-core, poetry group dev"),
    Repository("marko", "https://github.com/frostming/marko", "0fa0b29b670feca15558652f327bc20c3baee91b",
               "pdm-backend, pdm dev-dependencies"),
    Repository("six", "https://github.com/benjaminp/six", "c8e394065cd541a16c040515dc0afb85cf22a7c3",
               "setuptools (setup.py), tox deps only"),
]


def host_outcomes(repo: Path, scratch: Path) -> tuple[dict[str, str], float, str]:
    """Per-test outcomes of the suite in a fresh host venv with the declared dependencies; (outcomes, seconds, log)."""
    copy = scratch / repo.name
    subprocess.run(["git", "clone", "-q", str(repo), str(copy)], check=True)
    venv = scratch / f"{repo.name}-venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-U", "pip"], check=True, capture_output=True)
    plan = plan_setup(copy)
    args = shlex.split(plan.commands()[0])[3:]  # after `uv pip install`
    install = subprocess.run([*pip, *args], cwd=copy, capture_output=True, text=True)
    if install.returncode != 0:
        return {}, time.monotonic() - started, install.stderr[-2000:]
    with tempfile.TemporaryFile() as report:
        env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8",
               "PYTHONPATH": str(PLUGIN_DIR), "PYTEST_ADDOPTS": f"-p {PLUGIN_NAME} -p no:cacheprovider",
               "AGENTCODER_REPORT_FD": str(report.fileno()), "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run([python, "-m", "pytest", "-q"], cwd=copy, env=env, pass_fds=(report.fileno(),),
                              capture_output=True, text=True, timeout=1800)
        report.seek(0)
        parsed = read_report(report.read().decode("utf-8", errors="replace").splitlines())
    outcomes = {test.id: test.outcome for test in parsed.tests}
    outcomes |= {f"<collect> {error.id}": "error" for error in parsed.errors}
    return outcomes, time.monotonic() - started, done.stdout[-1500:]


def sandbox_outcomes(sandbox: Sandbox, repo: Path) -> tuple[dict[str, str], float, float, str, int, str]:
    """(outcomes, first-run s, cached-run s, image, image bytes, problem) of `check` in the sandbox."""
    config = load_repo_config(repo)
    tag = sandbox.images.tag_for(repo, config)
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)
    started = time.monotonic()
    try:
        sandbox.run_tests(repo, config)
    except SetupFailed as exc:
        return {}, time.monotonic() - started, 0.0, tag, 0, "setup failed: " + exc.log_tail[-1500:]
    first = time.monotonic() - started
    started = time.monotonic()
    result = sandbox.run_tests(repo, config)
    cached = time.monotonic() - started
    outcomes = result.outcomes() | {f"<collect> {error.id}": "error" for error in result.collection_errors}
    size = sandbox.client.images.get(tag).attrs["Size"]
    return outcomes, first, cached, tag, size, result.describe_problem() or ""


def failing(outcomes: dict[str, str]) -> set[str]:
    """The tests that failed or errored."""
    return {test for test, outcome in outcomes.items() if outcome in {"failed", "error"}}


def main() -> None:
    """Run every repository and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repos", type=Path, help="directory holding one checkout per repository, by name")
    parser.add_argument("--only", default="", help="comma-separated names")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    wanted = {name for name in args.only.split(",") if name}
    settings = load_settings(sandbox_setup_network="host", sandbox_timeout_s=1800)
    sandbox = Sandbox.from_settings(settings)
    base_size = sandbox.client.images.get(settings.sandbox_image).attrs["Size"]
    print(f"base image {settings.sandbox_image}: {base_size / 1e6:.0f} MB")
    rows = []
    for spec in REPOSITORIES:
        if wanted and spec.name not in wanted:
            continue
        repo = args.repos / spec.name
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        if head != spec.commit:
            print(f"{spec.name}: missing or not at {spec.commit[:12]}: git clone {spec.url} {repo} &&"
                  f" git -C {repo} checkout {spec.commit}")
            continue
        with tempfile.TemporaryDirectory(prefix="agentcoder-real-") as scratch:
            host, host_s, host_log = host_outcomes(repo, Path(scratch))
        ours, first, cached, image, size, problem = sandbox_outcomes(sandbox, repo)
        same = sum(1 for test, outcome in host.items() if ours.get(test) == outcome)
        differ = sorted(set(host) ^ set(ours) | {t for t in host if t in ours and host[t] != ours[t]})
        # Same tests, and the same ones failing: what the loop acts on. A test skipped on one side only
        # (an optional module the host's Python has and Debian's has not) does not change a verdict.
        verdicts = bool(host) and set(host) == set(ours) and failing(host) == failing(ours)
        row = {"name": spec.name, "url": spec.url, "commit": spec.commit, "packaging": spec.packaging,
               "host_tests": len(host), "sandbox_tests": len(ours), "same": same, "agree": bool(host) and not differ,
               "verdicts_agree": verdicts, "host_failing": sorted(failing(host))[:20],
               "differ": differ[:10], "first_run_s": round(first, 1), "cached_run_s": round(cached, 1),
               "host_s": round(host_s, 1), "image": image, "image_mb": round(size / 1e6),
               "problem": problem, "host_log": "" if host else host_log}
        rows.append(row)
        agreement = "AGREE" if row["agree"] else "same verdicts" if verdicts else "DIFFER"
        print(f"{spec.name:15} {agreement:13} {same}/{len(host)} host tests same, {len(failing(host))} failing on host"
              f" ({len(ours)} in sandbox); first {first:.0f} s, cached {cached:.1f} s, host venv+pytest {host_s:.0f} s;"
              f" image {size / 1e6:.0f} MB; {spec.packaging}" + (f"; {problem}" if problem else ""), flush=True)
        for test in differ[:5]:
            print(f"    {test}: host {host.get(test)}, sandbox {ours.get(test)}")
    agree = sum(1 for row in rows if row["agree"])
    verdicts = sum(1 for row in rows if row["verdicts_agree"])
    print(f"every outcome the same: {agree} of {len(rows)} repositories;"
          f" same tests and same failures: {verdicts} of {len(rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

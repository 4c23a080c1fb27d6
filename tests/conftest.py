"""Shared fixtures: real git repositories on disk and a real Docker sandbox."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.sqlite_queue import SqliteQueue
from bot.config import load_settings
from bot.dev.openai_server import ScriptedOpenAI
from bot.sandbox.executor import ContainerLimits, Sandbox, SandboxUnavailable
from tests.cli_runs import SETTING_PREFIXES, Run, run_main


def make_repo(root: Path, files: dict[str, str], *, commit: bool = True) -> Path:
    """Write `files` (path → text, dedented) under `root` and commit them on branch main."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    if commit:
        git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    return root


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SqliteQueue]:
    """The embedded job queue in a fresh SQLite file."""
    store = SqliteQueue(tmp_path / "jobs.db")
    yield store
    store.close()


@pytest.fixture
def scripted_model() -> Iterator[ScriptedOpenAI]:
    """The scripted OpenAI-compatible stand-in, started with an empty script."""
    with ScriptedOpenAI() as running:
        yield running


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path: Path):
    """`cli(*args, env={...})`: `agentcoder ARGS` in this process, returning a `Run`.

    The environment starts without AGENTCODER_* and OPENAI_* settings and gets `env` on top (kept for later calls
    in the same test); the working directory is the test's tmp_path. Both are put back after the test.
    """
    for key in list(os.environ):
        if key.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def run(*args: object, env: dict[str, str] | None = None) -> Run:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return run_main(capsys, [str(arg) for arg in args])

    return run


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """A sandbox on the real Docker daemon with small limits, so the bad-input tests stay quick."""
    settings = load_settings()
    try:
        real = Sandbox.from_settings(settings)
    except SandboxUnavailable as exc:
        pytest.fail(f"these tests need the real Docker engine and the sandbox image: {exc}")
    return Sandbox(real.client, settings.sandbox_image, ContainerLimits(memory="512m", pids=128, output_bytes=50_000),
                   timeout_s=120)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that asks for the real sandbox needs the Docker engine: mark it `docker`."""
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture
def world(tmp_path: Path, sandbox: Sandbox):
    """The App end to end: the stand-in GitHub, scripted models and `serve` on the real sandbox (tests/app_world.py)."""
    from tests.app_world import World

    made = World(tmp_path, sandbox)
    try:
        yield made
    finally:
        made.close()


_SHARED_POSTGRES = pytest.StashKey[Path]()
_SHARED_POSTGRES_INPUT = "agentcoder_postgres_root"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist: every worker shares one PostgreSQL cluster, made in a directory this process removes."""
    if _SHARED_POSTGRES not in node.config.stash:
        node.config.stash[_SHARED_POSTGRES] = Path(tempfile.mkdtemp(prefix="agentcoder-pg-shared-"))
    node.workerinput[_SHARED_POSTGRES_INPUT] = str(node.config.stash[_SHARED_POSTGRES])


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the workers' shared PostgreSQL cluster (started by the first worker that needed it), if any."""
    root = config.stash.get(_SHARED_POSTGRES, None)
    if root is None:
        return
    if (root / "port").exists():
        from bot.dev.postgres import ThrowawayPostgres

        ThrowawayPostgres(root=root).remove()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(request):
    """One throw-away PostgreSQL cluster for the session (Debian's binaries, 127.0.0.1 only, a free port).

    Under pytest-xdist all workers share one cluster (started by the first that needs it): take a database of
    your own with `new_database()`, and never stop the server (a test that must, starts a cluster of its own).
    """
    shared = getattr(request.config, "workerinput", {}).get(_SHARED_POSTGRES_INPUT)
    cluster = _start_postgres(Path(shared) if shared else None)
    yield cluster
    if not shared:
        cluster.remove()


@pytest.fixture
def own_postgres():
    """A cluster of this test's own, for a test that stops and starts its server (the session's may be shared)."""
    cluster = _start_postgres(None)
    yield cluster
    cluster.remove()


def _start_postgres(shared: Path | None):
    """The shared cluster in `shared`, or a new one; a test fails with what to install when PostgreSQL is missing."""
    from bot.dev.postgres import PostgresUnavailable, ThrowawayPostgres

    try:
        return ThrowawayPostgres.shared(shared) if shared else ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"these tests need Debian's postgresql package (scripts/setup installs it): {exc}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty job store of each engine: a SQLite file, or a new database of the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return request.getfixturevalue("postgres").new_database()

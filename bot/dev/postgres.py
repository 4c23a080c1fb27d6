"""A throw-away PostgreSQL cluster for tests, benchmarks and trials: Debian's `postgresql` binaries,
`initdb` in a temporary directory as a non-root user, listening on 127.0.0.1 only on a free port.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "agentcoder"


class PostgresUnavailable(Exception):
    """The PostgreSQL server binaries are not installed (Debian: apt-get install postgresql)."""


def server_bindir() -> Path:
    """Where initdb and pg_ctl are: Debian keeps them in /usr/lib/postgresql/<version>/bin, off the PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                      if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable("initdb not found: install Debian's postgresql package (scripts/setup does)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """One cluster in a temporary directory; `start()`, `url(db)`, `stop()`, `remove()`.

    `root` names the directory instead (an existing cluster in it is used as it is); see `shared()`.
    """

    def __init__(self, *, fsync: bool = False, root: Path | None = None):
        self.fsync = fsync
        self.root = root or Path(tempfile.mkdtemp(prefix="agentcoder-pg-"))
        self.data = self.root / "data"
        port_file = self.root / "port"
        self.port = int(port_file.read_text()) if port_file.exists() else _free_port()
        self.bindir = server_bindir()
        self._user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                self._user = pwd.getpwnam("nobody")
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self._databases = 0

    @classmethod
    def shared(cls, root: Path) -> ThrowawayPostgres:
        """The running cluster in `root`, shared by several processes (pytest-xdist's workers): the first to ask
        starts it. Whoever made `root` removes it with `remove()`; none of the sharers may stop it."""
        with open(root / "start.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            cluster = cls(root=root)
            if not (root / "port").exists():
                cluster.start()
                (root / "port").write_text(str(cluster.port))
            return cluster

    def _run(self, program: str, *args: str) -> None:
        kwargs = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": [],
                      "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root), "LC_ALL": "C"}}
        result = subprocess.run([str(self.bindir / program), *args], cwd=self.root, capture_output=True, text=True,
                                timeout=120, **kwargs)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{program} failed: {(result.stderr or result.stdout).strip()[-2000:]}")

    def start(self) -> ThrowawayPostgres:
        """Start the server (127.0.0.1 only, its socket in the temporary directory) and wait until it answers."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
                   f" -c max_connections=200 -c fsync={'on' if self.fsync else 'off'}")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends sessions, `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop (if running) and delete the cluster."""
        try:
            self.stop("immediate")
        except PostgresUnavailable:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The postgresql:// URL of a database of this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "agentcoder") -> str:
        """Create an empty database; its URL."""
        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

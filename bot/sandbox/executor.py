"""The test executor: the only module that talks to Docker.

It runs a repository's own suite, plus extra test files, in a locked-down container and
returns per-test outcomes read from a pytest plugin's JSON lines (never from the console).

Isolation of a test run: no network, read-only root filesystem, the checkout mounted
read-only and copied into a size-limited tmpfs `/workspace`, a tmpfs `/tmp`, all
capabilities dropped, `no-new-privileges`, user `nobody`, memory / CPU / pids limits, a
wall-clock timeout that kills, and a capped console. Nothing of the host environment is
passed in, and the host checkout is never written.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit

from bot.repo_config import RepoConfig
from bot.sandbox.results import RunResult, SetupFailed, decode_output, parse_report

PLUGIN_DIR = Path(__file__).parent / "container"
PLUGIN_NAME = "agentcoder_pytest_report"
SANDBOX_USER = "65534:65534"
DEPENDENCY_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "poetry.lock", ".agentcoder.yml")
# Bump when the setup script below changes, so cached environment images are rebuilt.
SETUP_SCRIPT_VERSION = "2"


class SandboxUnavailable(Exception):
    """No Docker daemon answers, or the sandbox image is missing; the message says what to do."""


@dataclass(frozen=True)
class ContainerLimits:
    """Resource limits of one sandbox container."""

    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 256
    output_bytes: int = 200_000
    workspace_size: str = "1g"
    tmp_size: str = "512m"
    max_file_bytes: int = 256 * 1024 * 1024


@dataclass
class _Exit:
    code: int | None
    output: str
    timed_out: bool
    oom: bool


def dependency_hash(repo: Path, setup_commands: Sequence[str], base_image_id: str) -> str:
    """Key of a repository's environment image: its dependency files, its setup, the base image."""
    digest = hashlib.sha256()
    digest.update(f"v{SETUP_SCRIPT_VERSION}\0{base_image_id}\0{list(setup_commands)!r}\0".encode())
    names = sorted(
        {name for name in DEPENDENCY_FILES if (repo / name).is_file()}
        | {path.name for path in repo.glob("requirements*.txt") if path.is_file()}
    )
    for name in names:
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def default_setup_commands(repo: Path, online: bool) -> list[str]:
    """What to install when `.agentcoder.yml` names no setup: requirements files, then the package.

    Offline, the build backend cannot be fetched, so the image's own setuptools builds the package.
    """
    commands = [f"pip install -r {shlex.quote(path.name)}" for path in sorted(repo.glob("requirements*.txt"))]
    if (repo / "pyproject.toml").is_file() or (repo / "setup.py").is_file():
        commands.append("pip install -e ." if online else "pip install --no-build-isolation -e .")
    return commands


class Sandbox:
    """Runs commands and test suites in locked-down containers."""

    def __init__(
        self,
        client: docker.DockerClient,
        base_image: str,
        limits: ContainerLimits = ContainerLimits(),
        timeout_s: float = 300.0,
        setup_timeout_s: float = 900.0,
        setup_network: str = "none",
        wheelhouse: Path | None = None,
    ):
        self.client = client
        self.base_image = base_image
        self.limits = limits
        self.timeout_s = timeout_s
        self.setup_timeout_s = setup_timeout_s
        self.setup_network = setup_network
        self.wheelhouse = wheelhouse

    @classmethod
    def from_settings(cls, settings) -> Sandbox:
        """Connect to the Docker daemon and check that the base image is there."""
        try:
            client = docker.from_env(timeout=600, environment=settings.docker_environment())
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(
                "no Docker daemon answers: start one (for example `dockerd --bridge=none --iptables=false &`)"
                " or set DOCKER_HOST"
            ) from exc
        sandbox = cls(
            client,
            settings.sandbox_image,
            ContainerLimits(memory=settings.sandbox_memory, cpus=settings.sandbox_cpus, pids=settings.sandbox_pids,
                   output_bytes=settings.sandbox_output_limit),
            timeout_s=settings.sandbox_timeout_s,
            setup_timeout_s=settings.sandbox_setup_timeout_s,
            setup_network=settings.sandbox_setup_network,
            wheelhouse=settings.sandbox_wheelhouse,
        )
        sandbox.base_image_id()
        return sandbox

    def base_image_id(self) -> str:
        """The base image's id; SandboxUnavailable when it is missing."""
        try:
            return self.client.images.get(self.base_image).id
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(
                f"sandbox image {self.base_image} is missing: build it with scripts/build-sandbox-image"
                " or set AGENTCODER_SANDBOX_IMAGE to an image with Python and pip"
            ) from exc

    # -- environment images -------------------------------------------------------------

    def environment_image(self, repo: Path, config: RepoConfig) -> str:
        """The image with the repository's dependencies installed, built once per dependency hash."""
        online = self.setup_network == "host" or self.wheelhouse is not None
        commands = list(config.setup) if config.setup is not None else default_setup_commands(repo, online)
        tag = f"agentcoder-env:{dependency_hash(repo, commands, self.base_image_id())}"
        try:
            self.client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        script = "\n".join(
            [
                "set -e",
                "[ -x /opt/venv/bin/python ] || python3 -m venv --system-site-packages /opt/venv",
                "export PATH=/opt/venv/bin:$PATH",
                "python -c 'import pytest' 2>/dev/null || pip install pytest",
                "mkdir -p /workspace && cp -a /src/. /workspace/ && cd /workspace",
                *(f"echo '+ '{shlex.quote(command)}\n{command}" for command in commands),
                # Test runs mount a fresh tmpfs here as user nobody: leave an empty, world-writable mount point.
                "cd / && rm -rf /workspace && mkdir -m 1777 /workspace",
            ]
        )
        mounts = {str(repo.resolve()): {"bind": "/src", "mode": "ro"}}
        environment = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "HOME": "/tmp"}
        if self.wheelhouse:
            mounts[str(self.wheelhouse.resolve())] = {"bind": "/wheelhouse", "mode": "ro"}
            environment |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheelhouse"}
        if self.setup_network == "host" and Path("/etc/ssl/certs/ca-certificates.crt").is_file():
            mounts["/etc/ssl/certs/ca-certificates.crt"] = {"bind": "/etc/agentcoder-ca.crt", "mode": "ro"}
            environment["PIP_CERT"] = "/etc/agentcoder-ca.crt"
        container = self._create_setup_container(script, environment, mounts)
        try:
            result = self._start_and_wait(container, self.setup_timeout_s)
            if result.code != 0:
                tail = result.output[-4000:]
                if result.timed_out:
                    tail += f"\n[setup killed after {self.setup_timeout_s:.0f} s]"
                raise SetupFailed(tail)
            container.commit(repository="agentcoder-env", tag=tag.split(":", 1)[1],
                             changes=["ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        finally:
            container.remove(force=True)
        return tag

    def _create_setup_container(self, script: str, environment: dict, mounts: dict):
        return self.client.containers.create(
            self.base_image,
            ["timeout", "-s", "KILL", str(int(self.setup_timeout_s)), "sh", "-c", script],
            environment=environment,
            volumes=mounts,
            tmpfs={"/tmp": f"rw,exec,size={self.limits.tmp_size}"},
            network_mode=self.setup_network,
            mem_limit=self.limits.memory,
            pids_limit=self.limits.pids * 4,
            log_config=self._log_config(),
            labels={"agentcoder": "setup"},
        )

    # -- test runs ----------------------------------------------------------------------

    def run_tests(
        self,
        repo: Path,
        config: RepoConfig,
        extra_files: Mapping[str, str] | None = None,
        selection: Sequence[str] = (),
        image: str | None = None,
    ) -> RunResult:
        """Run the repository's suite (or `selection`) plus `extra_files` and return per-test outcomes.

        `extra_files` maps repository-relative paths to file text; they are laid over the copy
        of the checkout inside the container, never written to the host checkout.
        """
        image = image or self.environment_image(repo, config)
        timeout_s = config.timeout_s or self.timeout_s
        command = config.test_command + "".join(f" {shlex.quote(node)}" for node in selection)
        with self._staging(extra_files or {}) as staging:
            script = "\n".join(
                [
                    "cp -R /src/. /workspace/",
                    "cp -R /stage/extra/. /workspace/",
                    "cd /workspace",
                    command,
                ]
            )
            mounts = {
                str(repo.resolve()): {"bind": "/src", "mode": "ro"},
                str(staging): {"bind": "/stage", "mode": "ro"},
                str(staging / "out"): {"bind": "/out", "mode": "rw"},
            }
            environment = {
                "HOME": "/tmp",
                "PYTHONPATH": "/stage/plugin",
                "PYTEST_ADDOPTS": f"-p {PLUGIN_NAME} -p no:cacheprovider",
                "AGENTCODER_REPORT": "/out/report.jsonl",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "PIP_NO_INDEX": "1",
            }
            started = time.monotonic()
            exit_ = self._run_locked_down(image, ["sh", "-c", script], environment, mounts, timeout_s)
            duration = time.monotonic() - started
            report = (staging / "out" / "report.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
        tests, errors, running = parse_report(report)
        timed_out = exit_.timed_out or (exit_.code == 137 and duration >= timeout_s and not exit_.oom)
        return RunResult(
            tests=tests,
            collection_errors=errors,
            exit_code=exit_.code,
            timed_out=timed_out,
            running_at_timeout=running if timed_out else None,
            out_of_memory=exit_.oom,
            output=exit_.output,
            duration_s=duration,
        )

    def run_script(self, image: str, files: Mapping[str, str], command: Sequence[str], timeout_s: float,
                   workdir: str = "/workspace") -> tuple[int | None, str, bool]:
        """Run `command` in a locked-down container over `files` (path → text); (exit code, output, timed out)."""
        with self._staging(files) as staging:
            script = f"cp -R /stage/extra/. {shlex.quote(workdir)}/ && cd {shlex.quote(workdir)} && exec \"$@\""
            exit_ = self._run_locked_down(image, ["sh", "-c", script, "sh", *command],
                                          {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
                                          {str(staging): {"bind": "/stage", "mode": "ro"}}, timeout_s)
        return exit_.code, exit_.output, exit_.timed_out or exit_.code == 137

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _staging(self, extra_files: Mapping[str, str]) -> Iterator[Path]:
        """A host directory with the plugin, the extra files and a one-file output slot."""
        staging = Path(tempfile.mkdtemp(prefix="agentcoder-stage-"))
        try:
            staging.chmod(0o755)
            (staging / "plugin").mkdir()
            shutil.copy(PLUGIN_DIR / f"{PLUGIN_NAME}.py", staging / "plugin")
            extra = staging / "extra"
            extra.mkdir()
            for relative, text in extra_files.items():
                target = extra / _safe_relative(relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            out = staging / "out"
            out.mkdir()
            # The sandbox user may write this one file and create nothing else on the host.
            (out / "report.jsonl").touch()
            (out / "report.jsonl").chmod(0o666)
            for path in [staging, *staging.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
                elif path.name != "report.jsonl":
                    path.chmod(0o644)
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _log_config(self) -> LogConfig:
        # The daemon keeps only the newest output, so a test that prints without end cannot fill the disk.
        size = max(self.limits.output_bytes, 64 * 1024)
        return LogConfig(type=LogConfig.types.JSON, config={"max-size": str(size), "max-file": "1"})

    def _run_locked_down(self, image: str, command: list[str], environment: dict, mounts: dict,
                         timeout_s: float) -> _Exit:
        """Run `command` in a fresh locked-down container, killed at `timeout_s`; the container is removed."""
        cpus = self.limits.cpus
        container = self.client.containers.create(
            image,
            ["timeout", "-s", "KILL", str(int(timeout_s)), *command],
            environment=environment,
            volumes=mounts,
            user=SANDBOX_USER,
            network_mode="none",
            read_only=True,
            tmpfs={
                "/workspace": f"rw,exec,size={self.limits.workspace_size},mode=1777",
                "/tmp": f"rw,exec,size={self.limits.tmp_size},mode=1777",
            },
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=self.limits.memory,
            memswap_limit=self.limits.memory,
            nano_cpus=int(cpus * 1e9) if cpus else None,
            pids_limit=self.limits.pids,
            ulimits=[Ulimit(name="fsize", soft=self.limits.max_file_bytes, hard=self.limits.max_file_bytes),
                     Ulimit(name="core", soft=0, hard=0)],
            log_config=self._log_config(),
            labels={"agentcoder": "run"},
            working_dir="/",
        )
        try:
            return self._start_and_wait(container, timeout_s)
        finally:
            container.remove(force=True)

    def _start_and_wait(self, container, timeout_s: float) -> _Exit:
        """Start a container and wait for it; kill it if it outlives `timeout_s` (plus grace)."""
        container.start()
        timed_out = False
        try:
            status = container.wait(timeout=timeout_s + 15)
            code = status.get("StatusCode")
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            # docker-py reports a wait timeout as a connection error.
            timed_out = True
            try:
                container.kill()
            except docker.errors.APIError:
                pass
            code = container.wait(timeout=60).get("StatusCode")
        state = self.client.api.inspect_container(container.id)["State"]
        raw = container.logs(stdout=True, stderr=True, tail=2000)
        return _Exit(code, decode_output(raw, self.limits.output_bytes), timed_out, bool(state.get("OOMKilled")))


def _safe_relative(relative: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"extra file path must stay inside the repository: {relative!r}")
    return path

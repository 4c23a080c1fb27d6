"""The test executor: runs a repository's suite, plus extra test files, in a locked-down container.

Per-test outcomes come from a pytest plugin's JSON lines streamed on the container's stdout (never
from the console), cross-checked with pytest's exit status and the set of collected tests.

Isolation of a test run: no network, read-only root filesystem, the checkout sent as a tar on stdin
into a size-limited tmpfs `/workspace` (over the files the setup generated), a tmpfs `/tmp`, all
capabilities dropped, `no-new-privileges`, user `nobody`, memory / CPU / pids limits, a wall-clock
timeout that kills, and a capped console. Nothing of the host environment is passed in, nothing is
bind-mounted, and the host checkout is never written.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

import docker
import docker.errors

from bot.repo_config import RepoConfig
from bot.sandbox.archives import Archive
from bot.sandbox.containers import (
    ContainerLimits,
    SandboxUnavailable,
    locked_down,
    run_container,
)
from bot.sandbox.environment import GENERATED_DIR, EnvironmentImages, SetupOptions
from bot.sandbox.results import ReportReader, RunResult, SetupFailed
from bot.sandbox.verdict import judge

__all__ = ["ContainerLimits", "Sandbox", "SandboxUnavailable", "SetupFailed", "SetupOptions"]

PLUGIN_DIR = Path(__file__).parent / "container"
PLUGIN_NAME = "agentcoder_pytest_report"
REPORT_LIMIT = 32 * 1024 * 1024


class Sandbox:
    """Runs commands and test suites in locked-down containers."""

    def __init__(
        self,
        client: docker.DockerClient,
        base_image: str,
        limits: ContainerLimits = ContainerLimits(),
        timeout_s: float = 300.0,
        setup: SetupOptions = SetupOptions(),
    ):
        self.client = client
        self.base_image = base_image
        self.limits = limits
        self.timeout_s = timeout_s
        self.setup = setup
        self.images = EnvironmentImages(client, base_image, limits, setup)

    @classmethod
    def from_settings(cls, settings) -> Sandbox:
        """Connect to the Docker daemon and check the base image and the setup network."""
        try:
            client = docker.from_env(timeout=600, environment=settings.docker_environment())
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(
                "no Docker daemon answers: start one (for example `dockerd --bridge=none --iptables=false &`)"
                " or set DOCKER_HOST"
            ) from exc
        network = settings.sandbox_setup_network
        if network not in {"none", "host"}:
            try:
                client.networks.get(network)
            except docker.errors.NotFound as exc:
                raise SandboxUnavailable(
                    f"AGENTCODER_SANDBOX_SETUP_NETWORK: no Docker network named {network!r}"
                    " (create it with `docker network create`, or use none or host)"
                ) from exc
        sandbox = cls(
            client,
            settings.sandbox_image,
            ContainerLimits(memory=settings.sandbox_memory, cpus=settings.sandbox_cpus, pids=settings.sandbox_pids,
                   output_bytes=settings.sandbox_output_limit, setup_memory=settings.sandbox_setup_memory,
                   setup_disk=settings.sandbox_setup_disk),
            timeout_s=settings.sandbox_timeout_s,
            setup=SetupOptions(network=network, ca_bundle=settings.sandbox_ca_bundle,
                               wheelhouse=settings.sandbox_wheelhouse, timeout_s=settings.sandbox_setup_timeout_s,
                               max_images=settings.sandbox_env_images_max,
                               max_image_bytes=settings.sandbox_env_images_bytes),
        )
        sandbox.base_image_id()
        return sandbox

    def base_image_id(self) -> str:
        """The base image's id; SandboxUnavailable when it is missing."""
        return self.images.base_image_id()

    def environment_image(self, repo: Path, config: RepoConfig) -> str:
        """The image with the repository's dependencies installed, built once per set of setup inputs."""
        return self.images.get(repo, config)

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
        timeout_s = config.timeout_within(self.timeout_s)  # the operator's limit is an upper bound
        command = config.test_command + "".join(f" {shlex.quote(node)}" for node in selection)
        archive = Archive()
        archive.add_tree(repo, "workspace")
        archive.add_files("workspace", extra_files or {})
        archive.add_text(f"tmp/agentcoder/plugin/{PLUGIN_NAME}.py", (PLUGIN_DIR / f"{PLUGIN_NAME}.py").read_text())
        script = "\n".join([
            "exec 3>&1 1>&2",  # fd 3: the report channel (stdout); everything else is the console (stderr)
            f"[ -d {GENERATED_DIR} ] && cp -R {GENERATED_DIR}/. /workspace/",
            "tar -x --no-same-owner -f - -C / || exit 125",
            "cd /workspace",
            command,
        ])
        environment = {
            "HOME": "/tmp",
            "PYTHONPATH": "/tmp/agentcoder/plugin",
            "PYTEST_ADDOPTS": f"-p {PLUGIN_NAME} -p no:cacheprovider",
            "AGENTCODER_REPORT_FD": "3",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PIP_NO_INDEX": "1",
        }
        reader = ReportReader(REPORT_LIMIT)
        exit_ = run_container(self.client, image, ["sh", "-c", script], self._test_create(timeout_s),
                              stdin=archive.finish(), timeout_s=timeout_s, output_limit=self.limits.output_bytes,
                              labels={"agentcoder": "run"}, on_stdout=reader.feed, environment=environment)
        report = reader.report()
        result = RunResult(
            tests=report.tests,
            collection_errors=report.errors,
            exit_code=exit_.code,
            timed_out=exit_.timed_out,
            running_at_timeout=report.running if exit_.timed_out else None,
            out_of_memory=exit_.oom,
            output=exit_.output,
            duration_s=exit_.duration_s,
        )
        return judge(result, report)

    def run_script(self, image: str, files: Mapping[str, str], command: Sequence[str], timeout_s: float,
                   workdir: str = "/workspace") -> tuple[int | None, str, bool]:
        """Run `command` in a locked-down container over `files` (path → text); (exit code, output, timed out)."""
        archive = Archive()
        archive.add_files(workdir.strip("/"), files)
        script = f"tar -x --no-same-owner -f - -C / && cd {shlex.quote(workdir)} && exec \"$@\""
        exit_ = run_container(self.client, image, ["sh", "-c", script, "sh", *command], self._test_create(timeout_s),
                              stdin=archive.finish(), timeout_s=timeout_s, output_limit=self.limits.output_bytes,
                              labels={"agentcoder": "run"},
                              environment={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})
        return exit_.code, exit_.output, exit_.timed_out or exit_.code == 137

    def _test_create(self, timeout_s: float) -> dict:
        return locked_down(self.limits, timeout_s, tmpfs={
            "/workspace": f"rw,exec,size={self.limits.workspace_size},mode=1777",
            "/tmp": f"rw,exec,size={self.limits.tmp_size},mode=1777",
        })

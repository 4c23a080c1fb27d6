"""Environment images: a repository's dependencies installed once, cached by every input of the setup.

The setup runs locked down like a test run: as nobody, no capabilities, `no-new-privileges`, memory and
pids limits, a read-only root with size-limited tmpfs for `/workspace`, `/opt/venv` and `/tmp` (the disk
limit), a kill timer, and network `none` unless the operator names a Docker network or `host`. What it
produced (the virtual environment, and files it generated in the checkout such as a `_version.py` or an
extension built in place) leaves the container as a tar on its stdout; the bot lays that over the base
image in a fresh container that never ran repository code, and commits it: no volumes, no mounts.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from bot.repo_config import RepoConfig
from bot.sandbox.archives import Archive
from bot.sandbox.containers import ContainerLimits, locked_down, run_container
from bot.sandbox.results import SetupFailed
from bot.sandbox.setup_plan import dependency_files, plan_setup

ENV_REPOSITORY = "agentcoder-env"
ENV_LABEL = "agentcoder.env"
# Bump when the setup script below changes, so cached environment images are rebuilt.
SETUP_SCRIPT_VERSION = "4"
GENERATED_DIR = "/opt/agentcoder/generated"
IMAGE_PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPORT_LIMIT = 8 * 1024 * 1024 * 1024
# The checkout is unpacked by the sandbox user into a tmpfs owned by root: git must not call that dubious.
# git honours safe.directory only from a global or system file, and build backends strip GIT_* variables.
GIT_CONFIG = "[safe]\n\tdirectory = *\n"


@dataclass(frozen=True)
class SetupOptions:
    """The operator's choices for setup: network, CA bundle for a proxy, a local wheelhouse, image cache caps."""

    network: str = "none"
    ca_bundle: Path | None = None
    wheelhouse: Path | None = None
    timeout_s: float = 900.0
    max_images: int = 30
    max_image_bytes: int = 20 * 1024 ** 3

    @property
    def online(self) -> bool:
        """Whether setup can reach a package index."""
        return self.network != "none"


def repository_identity(repo: Path) -> str:
    """Who the repository is: the owner/name path of its origin URL, else its path on the bot's disk.

    One bot talks to one GitHub, so the URL's path names the repository; leaving out the scheme, host,
    port and any credentials keeps the key stable across clones (and the stand-in's changing port).
    """
    done = subprocess.run(["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
                          capture_output=True, text=True)
    url = done.stdout.strip()
    if done.returncode != 0 or not url:
        return str(repo.resolve())
    path = re.sub(r"^[a-z+]+://[^/]*", "", url)  # scheme://user:token@host:port
    path = re.sub(r"^[^/:]+@[^:]+:", "", path)     # git@host:owner/name
    return path.strip("/").removesuffix(".git")


def setup_commands(repo: Path, config: RepoConfig) -> list[str]:
    """The repository's own setup commands, else the zero-configuration plan."""
    return list(config.setup) if config.setup is not None else plan_setup(repo).commands()


def environment_key(repo: Path, commands: Sequence[str], base_image_id: str, options: SetupOptions) -> str:
    """Key of an environment image: repository identity, base image, network, commands and dependency files."""
    digest = hashlib.sha256()
    wheels = sorted((p.name, p.stat().st_size) for p in options.wheelhouse.iterdir()) if options.wheelhouse else []
    header = [SETUP_SCRIPT_VERSION, base_image_id, repository_identity(repo), options.network, list(commands), wheels]
    digest.update(json.dumps(header).encode() + b"\0")
    for name in dependency_files(repo):
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def setup_script(commands: Sequence[str]) -> str:
    """The shell script of a setup container: unpack, install, export what it made on stdout."""
    return "\n".join([
        "set -e",
        "exec 3>&1 1>&2",  # stdout carries the export; the commands' output is the console
        "tar -x --no-same-owner --no-same-permissions -f - -C /",
        # Keep modification times, or every import in a test run finds its .pyc stale (and cannot rewrite it).
        "cp -R --preserve=timestamps /opt/venv-seed/* /opt/venv/",
        "export HOME=/tmp/home && mkdir -p /tmp/agentcoder",
        "cd /workspace",
        "[ -e .git ] || export SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0",
        "find . -path ./.git -prune -o -print | LC_ALL=C sort > /tmp/agentcoder/before",
        *(f"cd /workspace\necho '+ '{shlex.quote(command)}\n{command}" for command in commands),
        "cd /workspace",
        r"find . \( -path ./.git -o -name __pycache__ -o -name .pytest_cache \) -prune -o -print"
        " | LC_ALL=C sort > /tmp/agentcoder/after",
        "LC_ALL=C comm -13 /tmp/agentcoder/before /tmp/agentcoder/after > /tmp/agentcoder/generated",
        "echo \"+ setup generated $(wc -l < /tmp/agentcoder/generated) file(s) in the checkout\"",
        "tar -c -f - -C / opt/venv --no-recursion -C /workspace -T /tmp/agentcoder/generated"
        f" --transform 's,^\\./,{GENERATED_DIR.lstrip('/')}/,S' >&3",
    ])


@dataclass(frozen=True)
class CachedImage:
    """What pruning needs to know of one environment image."""

    id: str
    tags: tuple[str, ...]
    last_used: str
    size: int


def images_to_prune(images: Sequence[CachedImage], max_images: int, max_bytes: int, keep: str | None) -> list[str]:
    """Ids to remove so that at most `max_images` images of at most `max_bytes` remain, newest use kept first."""
    kept = [image for image in images if keep in image.tags]
    doomed, count, total = [], len(kept), sum(image.size for image in kept)
    for image in sorted(images, key=lambda image: image.last_used, reverse=True):
        if image in kept:
            continue
        count += 1
        total += image.size
        if count > max_images or total > max_bytes:
            doomed.append(image.id)
    return doomed


def _last_used(attrs: dict) -> str:
    last = (attrs.get("Metadata") or {}).get("LastTagTime") or ""
    return last if not last.startswith("0001-") else attrs.get("Created", "")


class EnvironmentImages:
    """Builds, finds and prunes the environment images of repositories."""

    def __init__(self, client: docker.DockerClient, base_image: str, limits: ContainerLimits, options: SetupOptions):
        self.client = client
        self.base_image = base_image
        self.limits = limits
        self.options = options

    def base_image_id(self) -> str:
        """The base image's id; SandboxUnavailable when it is missing."""
        from bot.sandbox.containers import SandboxUnavailable

        try:
            return self.client.images.get(self.base_image).id
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(
                f"sandbox image {self.base_image} is missing: build it with scripts/build-sandbox-image"
                " or set AGENTCODER_SANDBOX_IMAGE to an image built by it"
            ) from exc

    def tag_for(self, repo: Path, config: RepoConfig) -> str:
        """The tag the repository's environment image has (or will have)."""
        key = environment_key(repo, setup_commands(repo, config), self.base_image_id(), self.options)
        return f"{ENV_REPOSITORY}:{key}"

    def get(self, repo: Path, config: RepoConfig) -> str:
        """The repository's environment image, built when missing; marks it used for pruning."""
        tag = self.tag_for(repo, config)
        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            self._build(repo, setup_commands(repo, config), tag)
            self.prune(keep=tag)
            return tag
        try:
            image.tag(*tag.split(":", 1))  # bumps LastTagTime: least recently used images are pruned first
        except docker.errors.APIError:
            pass  # pruned by another job just now; the run that needs it builds it again
        return tag

    def prune(self, keep: str | None = None) -> list[str]:
        """Remove environment images past the count or size cap, least recently used first."""
        entries = []
        # Another job may remove an image between listing and inspecting it: skip those.
        for summary in self.client.api.images(filters={"label": ENV_LABEL}):
            try:
                attrs = self.client.api.inspect_image(summary["Id"])
            except docker.errors.NotFound:
                continue
            entries.append((attrs, tuple(summary.get("RepoTags") or ())))
        if not entries:
            return []
        base_size = self.client.api.inspect_image(self.base_image)["Size"]
        entries = [CachedImage(attrs["Id"], tags, _last_used(attrs), max(attrs["Size"] - base_size, 0))
                   for attrs, tags in entries]
        removed = []
        for image_id in images_to_prune(entries, self.options.max_images, self.options.max_image_bytes, keep):
            try:
                self.client.images.remove(image_id, force=True)
                removed.append(image_id)
            except docker.errors.APIError:
                pass  # in use by a running test; next time
        return removed

    def _build(self, repo: Path, commands: list[str], tag: str) -> None:
        archive = Archive()
        archive.add_tree(repo, "workspace", include_git=True)
        environment = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "VIRTUAL_ENV": "/opt/venv",
                       "UV_CACHE_DIR": "/tmp/uv-cache", "UV_LINK_MODE": "copy", "UV_PYTHON": "/opt/venv/bin/python",
                       "UV_NO_PROGRESS": "1", "UV_COMPILE_BYTECODE": "1"}
        archive.add_text("tmp/home/.gitconfig", GIT_CONFIG)
        if self.options.wheelhouse:
            archive.add_tree(self.options.wheelhouse, "tmp/agentcoder/wheelhouse")
            environment |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/tmp/agentcoder/wheelhouse",
                            "UV_NO_INDEX": "1", "UV_FIND_LINKS": "/tmp/agentcoder/wheelhouse"}
        if not self.options.online:
            environment |= {"PIP_NO_INDEX": "1", "UV_NO_INDEX": "1", "UV_OFFLINE": "1", "UV_NO_BUILD_ISOLATION": "1"}
        elif self.options.ca_bundle and self.options.ca_bundle.is_file():
            archive.add_text("tmp/agentcoder/ca.crt", self.options.ca_bundle.read_bytes())
            environment |= {"PIP_CERT": "/tmp/agentcoder/ca.crt", "SSL_CERT_FILE": "/tmp/agentcoder/ca.crt",
                            "REQUESTS_CA_BUNDLE": "/tmp/agentcoder/ca.crt"}
        disk = self.limits.setup_disk
        create = locked_down(self.limits, self.options.timeout_s, network=self.options.network,
                             memory=self.limits.setup_memory,
                             tmpfs={"/workspace": f"rw,exec,size={disk},mode=1777",
                                    "/opt/venv": f"rw,exec,size={disk},mode=1777",
                                    "/tmp": f"rw,exec,size={disk},mode=1777"})
        create["host"]["pids_limit"] = self.limits.pids * 4
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as export:
            written = [0]

            def keep(data: bytes) -> None:
                written[0] += len(data)
                if written[0] <= EXPORT_LIMIT:
                    export.write(data)

            result = run_container(self.client, self.base_image, ["sh", "-c", setup_script(commands)], create,
                                   stdin=archive.finish(), timeout_s=self.options.timeout_s,
                                   output_limit=max(self.limits.output_bytes, 64 * 1024),
                                   labels={"agentcoder": "setup"}, on_stdout=keep, environment=environment)
            if result.code != 0 or result.timed_out or result.oom:
                raise SetupFailed(self._explain(result))
            export.seek(0)
            self._commit(export, tag)

    def _explain(self, result) -> str:
        tail = result.output[-4000:]
        if result.timed_out:
            tail += f"\n[setup killed after {self.options.timeout_s:.0f} s]"
        if result.oom:
            tail += f"\n[setup ran out of memory: the limit is {self.limits.setup_memory}]"
        if "No space left on device" in tail or "File size limit exceeded" in tail:
            tail += (f"\n[setup hit the disk limit: {self.limits.setup_disk} per directory,"
                     f" {self.limits.max_file_bytes // 2 ** 20} MiB per file]")
        return tail

    def _commit(self, export, tag: str) -> None:
        # A container that never runs repository code: clears the base venv, receives the export, is committed.
        container = self.client.containers.create(self.base_image, ["rm", "-rf", "/opt/venv"], network_mode="none",
                                                  labels={"agentcoder": "commit"})
        try:
            container.start()
            container.wait(timeout=120)
            if not self.client.api.put_archive(container.id, "/", export):
                raise SetupFailed("the daemon refused the environment's files")
            repository, name = tag.split(":", 1)
            container.commit(repository=repository, tag=name, changes=[
                f"ENV PATH={IMAGE_PATH}", 'CMD ["python3"]', f"LABEL {ENV_LABEL}=1",
            ])
        finally:
            container.remove(force=True)

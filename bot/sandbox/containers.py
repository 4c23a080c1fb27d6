"""Docker plumbing: one locked-down container, fed a tar on stdin, its streams read back, then removed.

Everything goes through the Docker API on one attached connection: the input tar on stdin, the
container's stdout (a data channel: the test report, or the setup's exported files) and its stderr
(the console). Nothing is bind-mounted, so it works the same when the daemon does not share the bot's
filesystem, and nothing is left on the daemon's host once the container is removed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit
from docker.utils.socket import frames_iter

from bot.sandbox.results import decode_output

SANDBOX_USER = "65534:65534"
CHUNK = 256 * 1024


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
    setup_memory: str = "2g"
    setup_disk: str = "1g"


@dataclass
class Exit:
    """How a container ended: exit code, console text, and whether it was killed."""

    code: int | None
    output: str
    timed_out: bool
    oom: bool
    duration_s: float = 0.0


class CappedBuffer:
    """Keeps the first and last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int):
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_bytes = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        """Append bytes, keeping only head and tail."""
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail.append(data)
            self.tail_bytes += len(data)
            while self.tail_bytes - len(self.tail[0]) >= self.half:
                self.tail_bytes -= len(self.tail.popleft())

    def value(self) -> bytes:
        """Head and tail, with a marker where bytes were dropped."""
        tail = b"".join(self.tail)[-self.half:]
        dropped = self.total - len(self.head) - len(tail)
        marker = f"\n...[{dropped} bytes trimmed]...\n".encode() if dropped > 0 else b""
        return bytes(self.head) + marker + tail


def locked_down(limits: ContainerLimits, timeout_s: float, *, tmpfs: dict[str, str], network: str = "none",
                read_only: bool = True, memory: str | None = None) -> dict:
    """Create-arguments of a container that runs as nobody with no capabilities, limits and a kill timer."""
    memory = memory or limits.memory
    cpus = limits.cpus
    size = max(limits.output_bytes, 64 * 1024)
    host = dict(
        network_mode=network,
        read_only=read_only,
        tmpfs=tmpfs,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=memory,
        memswap_limit=memory,
        nano_cpus=int(cpus * 1e9) if cpus else None,
        pids_limit=limits.pids,
        ulimits=[Ulimit(name="fsize", soft=limits.max_file_bytes, hard=limits.max_file_bytes),
                 Ulimit(name="core", soft=0, hard=0)],
        # The daemon keeps only the newest output, so a test that prints without end cannot fill its disk.
        log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": str(size), "max-file": "1"}),
    )
    return {"user": SANDBOX_USER, "working_dir": "/", "host": host}


def run_container(client: docker.DockerClient, image: str, command: list[str], create: dict, *,
                  stdin: IO[bytes] | None, timeout_s: float, output_limit: int, labels: dict[str, str],
                  on_stdout: Callable[[bytes], None] | None = None, environment: dict | None = None) -> Exit:
    """Run `command` in a fresh container fed `stdin`; stdout goes to `on_stdout` (else the console).

    The command is wrapped in `timeout -s KILL`, and the bot kills the container if it outlives the
    timeout; the container is removed in every case.
    """
    # stdin_open also sets StdinOnce, which turns the end of our stdin into the container's EOF.
    container = client.containers.create(
        image, ["timeout", "-s", "KILL", str(max(int(timeout_s), 1)), *command], user=create["user"],
        working_dir=create["working_dir"], environment=environment or {}, labels=labels, stdin_open=True,
        **create["host"])
    try:
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        _raw(sock).settimeout(None)  # a test may be silent for longer than the client's timeout; the kill timer ends it
        console = CappedBuffer(output_limit)
        reader = threading.Thread(target=_read_frames, args=(sock, console, on_stdout), daemon=True)
        started = time.monotonic()
        container.start()
        reader.start()
        _feed(sock, stdin)
        timed_out = False
        try:
            code = container.wait(timeout=timeout_s + 15).get("StatusCode")
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            # docker-py reports a wait timeout as a connection error.
            timed_out = True
            try:
                container.kill()
            except docker.errors.APIError:
                pass
            code = container.wait(timeout=60).get("StatusCode")
        duration = time.monotonic() - started
        reader.join(timeout=60)
        _close(sock)
        oom = bool(client.api.inspect_container(container.id)["State"].get("OOMKilled"))
        # `timeout -s KILL` inside ends the command with 137 at the deadline, before the bot's own kill.
        timed_out = timed_out or (code == 137 and duration >= timeout_s and not oom)
        return Exit(code, decode_output(console.value(), output_limit), timed_out, oom, duration)
    finally:
        container.remove(force=True)


def _raw(sock) -> socket.socket:
    return getattr(sock, "_sock", sock)


def _feed(sock, stdin: IO[bytes] | None) -> None:
    raw = _raw(sock)
    try:
        if stdin is not None:
            while chunk := stdin.read(CHUNK):
                raw.sendall(chunk)
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the container ended before reading all of it; its exit code and console say why


def _read_frames(sock, console: CappedBuffer, on_stdout: Callable[[bytes], None] | None) -> None:
    try:
        for stream, data in frames_iter(sock, tty=False):
            if stream == 1 and on_stdout is not None:
                on_stdout(data)
            else:
                console.write(data)
    except (OSError, ValueError):
        pass


def _close(sock) -> None:
    for closable in (_raw(sock), sock):
        try:
            if closable is not None:
                closable.close()
        except OSError:
            pass

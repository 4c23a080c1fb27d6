"""Oversized webhook bodies are refused (413) from Content-Length and while streaming, with bounded memory."""

from __future__ import annotations

import socket
import tracemalloc
from pathlib import Path

import pytest

from bot.app.sqlite_queue import SqliteQueue
from bot.config import load_settings
from bot.dev.serving import ThreadedServer
from webhooks.app import MAX_BODY_BYTES, create_app

MB = 2**20


def post_raw(url: str, megabytes: int, *, chunked: bool) -> bytes:
    """Send an unsigned POST of `megabytes` MB over a plain socket (as an attacker would); the response's first line."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {megabytes * MB}"
        conn.sendall(f"POST /webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\n"
                     f"X-GitHub-Delivery: big\r\n{framing}\r\n\r\n".encode())
        chunk = b"x" * MB
        try:
            for _ in range(megabytes):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and stopped reading: the answer is waiting below
        return conn.recv(4096).split(b"\r\n", 1)[0]


@pytest.fixture
def server(tmp_path: Path):
    queue = SqliteQueue(tmp_path / "jobs.db")
    with ThreadedServer(create_app(load_settings(webhook_secret="hostile-secret", database_url=f"sqlite:///{tmp_path}/jobs.db"), queue, bot_login="agentcoder[bot]")) as running:
        yield running, queue
    queue.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_sixty_megabyte_unsigned_body_is_refused_with_bounded_memory(server, chunked):
    running, queue = server
    tracemalloc.start()
    try:
        status = post_raw(running.url, 60, chunked=chunked)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert peak < MAX_BODY_BYTES + 10 * MB  # never the whole 60 MB
    assert queue.recent() == []


def test_a_body_within_the_limit_is_read_and_then_checked(server):
    running, _ = server
    assert post_raw(running.url, 2, chunked=True) == b"HTTP/1.1 401 Unauthorized"

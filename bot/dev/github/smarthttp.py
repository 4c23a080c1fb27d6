"""Git smart HTTP for the stand-in: `git http-backend` run as a CGI per request, streamed both ways.

A raw ASGI wrapper rather than a FastAPI route: only this code may call `receive()` while the
response streams (http-backend answers a push before it has read all of it), and pushes over
1 MiB arrive chunked; under wsgiref they hang.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from bot.dev.github.bare import GIT_SEARCH_PATH

log = logging.getLogger(__name__)

GIT_PATH = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)\.git(?P<rest>/.*)?$")
CHUNK = 64 * 1024
# Request headers handed to the CGI as HTTP_*; http-backend reads the protocol and encoding from them.
FORWARDED_HEADERS = ("content-encoding", "git-protocol", "accept", "user-agent")

# (owner, repo, username, password, pushing) → (status, extra CGI environment): 200 to serve, 401 to ask for
# credentials, 403 when the token may read but not push, 404 when no such repo (or not visible to the token).
Authorizer = Callable[[str, str, str, str, bool], tuple[int, dict[str, str]]]


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


async def send_plain(send, status: int, text: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    """A short text/plain answer."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GitSmartHTTP:
    """ASGI middleware: `/{owner}/{repo}.git/...` goes to `git http-backend`, everything else to `app`."""

    def __init__(self, app, project_root: Path, authorize: Authorizer):
        self.app = app
        self.project_root = project_root
        self.authorize = authorize

    async def __call__(self, scope, receive, send) -> None:
        match = GIT_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        credentials = basic_credentials(headers.get("authorization"))
        query = scope.get("query_string", b"").decode("latin-1")
        pushing = (match["rest"] or "").endswith("git-receive-pack") or "service=git-receive-pack" in query
        verdict, extra = (self.authorize(match["owner"], match["repo"], *credentials, pushing) if credentials
                          else (401, {}))
        if verdict == 401:
            await send_plain(send, 401, "Invalid username or token. Password authentication is not supported "
                                        "for Git operations.\n",
                             [(b"www-authenticate", b'Basic realm="GitHub"')])
            return
        if verdict == 403:
            await send_plain(send, 403, f"Permission to {match['owner']}/{match['repo']}.git denied to the token.\n")
            return
        if verdict != 200:
            await send_plain(send, 404, "Repository not found.\n")
            return
        await self._serve(scope, receive, send, headers, username=credentials[0], extra=extra)

    def _cgi_environment(self, scope, headers: dict[str, str], username: str, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": GIT_SEARCH_PATH,
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "REQUEST_METHOD": scope["method"],
            "PATH_INFO": scope["path"],
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "REMOTE_USER": username or "x-access-token",
            "REMOTE_ADDR": (scope.get("client") or ("127.0.0.1", 0))[0],
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            **extra,
        }
        if "content-type" in headers:
            env["CONTENT_TYPE"] = headers["content-type"]
        if "content-length" in headers:
            env["CONTENT_LENGTH"] = headers["content-length"]
        for name in FORWARDED_HEADERS:
            if name in headers:
                env["HTTP_" + name.upper().replace("-", "_")] = headers[name]
        return env

    async def _serve(self, scope, receive, send, headers: dict[str, str], username: str, extra: dict[str, str]) -> None:
        process = await asyncio.create_subprocess_exec(
            "git", "http-backend", env=self._cgi_environment(scope, headers, username, extra),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        feeding = asyncio.create_task(self._feed(receive, process.stdin))
        errors = asyncio.create_task(process.stderr.read())
        try:
            status, response_headers = await self._read_cgi_headers(process.stdout)
            await send({"type": "http.response.start", "status": status, "headers": response_headers})
            while chunk := await process.stdout.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except BaseException:
            if process.returncode is None:
                process.kill()  # the client went away; do not leave the CGI blocked on a full pipe
            raise
        finally:
            await feeding
            code = await process.wait()
            stderr = await errors
            if code != 0:
                log.warning("git http-backend exited %s: %s", code, stderr.decode(errors="replace")[-2000:])

    @staticmethod
    async def _feed(receive, stdin: asyncio.StreamWriter) -> None:
        """Copy the request body into the CGI's stdin as it arrives, then close it."""
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                if chunk:
                    stdin.write(chunk)
                    await stdin.drain()
                if not message.get("more_body", False):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # http-backend stopped reading: it has answered already
        finally:
            stdin.close()

    @staticmethod
    async def _read_cgi_headers(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]]:
        status = 200
        headers: list[tuple[bytes, bytes]] = []
        while (line := (await stdout.readline()).rstrip(b"\r\n")):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"status":
                status = int(value.split()[0])
            else:
                headers.append((name.strip().lower(), value.strip()))
        return status, headers

"""An ASGI app served by uvicorn in a background thread on 127.0.0.1 (stand-ins, playground, tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn


class _PromptServer(uvicorn.Server):
    """uvicorn that stops as soon as it is asked, when no request is in flight.

    uvicorn notices `should_exit` on a 0.1 s tick and then sleeps 0.1 s more before it drains; a
    test suite that starts a hundred servers spends most of its waiting there. Here a stop wakes
    the main loop at once, and an idle server closes without the fixed pause; a server with a
    request in flight shuts down as uvicorn does (graceful timeout included).
    """

    _woken: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._woken.wait(), 0.1)
            except TimeoutError:
                pass

    def wake(self) -> None:
        """Ask the server to exit now (from any thread)."""
        self.should_exit = True
        if self._loop is not None and self._woken is not None:
            try:
                self._loop.call_soon_threadsafe(self._woken.set)
            except RuntimeError:  # the loop has already closed
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.server_state.tasks:
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()
            for _ in range(20):  # idle keep-alive connections close within a loop turn or two
                if not self.server_state.connections or self.server_state.tasks:
                    break
                await asyncio.sleep(0.005)
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class ThreadedServer:
    """uvicorn on an ephemeral loopback port, in a daemon thread; a context manager.

    The port is bound at construction, so an app that must know its own URL can be built after it.
    """

    def __init__(self, app=None, host: str = "127.0.0.1", *, name: str = "asgi", graceful_shutdown_s: float | None = None,
                 port: int = 0):
        self.app = app
        self.host = host
        self.name = name
        self.graceful_shutdown_s = graceful_shutdown_s
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._server: _PromptServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ThreadedServer:
        """Serve in the background and return once the server accepts connections."""
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=self.graceful_shutdown_s)
        self._server = _PromptServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True,
                                        name=f"{self.name}-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None and self._thread is not None:
            self._server.wake()
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

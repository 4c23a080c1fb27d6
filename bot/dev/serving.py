"""An ASGI app served by uvicorn in a background thread on 127.0.0.1 (stand-ins, playground, tests)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


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
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ThreadedServer:
        """Serve in the background and return once the server accepts connections."""
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=self.graceful_shutdown_s)
        self._server = uvicorn.Server(config)
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
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

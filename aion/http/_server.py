"""The HTTP server: uvicorn serving the application in a thread of the engine's process (or of ``aion ui``),
started after the engine and stopped before it.

uvicorn's own signal handlers are never installed (the process's owner handles SIGINT/SIGTERM: ``aion serve``
stops the engine, which stops this server first).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from aion.errors import ControlError, InvalidArgumentError
from aion.http._app import build_app
from aion.http._backend import Backend
from aion.http._security import Security, is_loopback, new_token
from aion.store import EventStore

__all__ = ["DEFAULT_ADDRESS", "UIServer", "parse_ui_address", "serve_engine", "serve_store"]

#: Where ``--ui`` serves when given without an address.
DEFAULT_ADDRESS = "127.0.0.1:8233"
#: Seconds the server waits for open requests (long-polls, streams) when stopping.
GRACE = 2.0


def parse_ui_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8233`` for IPv6) -> ``(host, port)``; ``InvalidArgumentError`` if malformed."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"the UI address must be HOST:PORT (port 0-65535), got {address!r}")
    return host, int(port)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # older uvicorn: never take the process's signals
        return


class UIServer:
    """Serves ``backend`` on ``address`` (``HOST:PORT``, port 0 for any free one) in a thread.

    ``token`` guards every state-changing request (and reading, off loopback); without one a random token is
    made (:attr:`token_generated` is then True: print it).
    """

    def __init__(self, backend: Backend, address: str = DEFAULT_ADDRESS, *, token: str | None = None) -> None:
        host, port = parse_ui_address(address)
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise InvalidArgumentError("the UI token must be a string of at least 8 characters")
        self.backend = backend
        self.token = token or new_token()
        self.token_generated = token is None
        self.security = Security(self.token, token_for_reads=not is_loopback(host), read_only=backend.read_only)
        config = uvicorn.Config(
            build_app(backend, self.security),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(GRACE),
        )
        self._server = _Server(config)
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] = (host, port)

    @property
    def url(self) -> str:
        """The server's base URL (``http://host:port``)."""
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve; returns once requests are answered (``ControlError`` if it cannot bind)."""
        self._thread = threading.Thread(target=self._server.run, name="aion-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ControlError(f"cannot serve the UI on {self.address[0]}:{self.address[1]} (address in use?)")
            time.sleep(0.01)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        if sockets:
            self.address = (self.address[0], int(sockets[0].getsockname()[1]))

    def stop(self) -> None:
        """Stop serving: open streams and long-polls end, the socket closes."""
        self.backend.stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=GRACE + 5.0)


def serve_engine(engine: Any, address: str = DEFAULT_ADDRESS, *, token: str | None = None) -> UIServer:
    """Start serving the UI and the API of a started ``aion.Engine``; stop it before the engine."""
    server = UIServer(Backend(Path(engine.data_dir), engine.store, engine), address, token=token)
    server.start()
    return server


def serve_store(
    data_dir: Path, store: EventStore, address: str = DEFAULT_ADDRESS, *, token: str | None = None
) -> UIServer:
    """Start serving the UI and the reading API of a store opened read-only (``aion ui``)."""
    server = UIServer(Backend(data_dir, store), address, token=token)
    server.start()
    return server

"""The client side of the control socket, used by the ``aion`` CLI."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from aion.control._frames import MAX_REPLY_BYTES, ConnectionClosed, recv_frame, send_frame
from aion.control._socket import check_socket_file, connect, socket_path
from aion.errors import ControlError


class RemoteError(Exception):
    """An error the engine replied with: its stable ``code`` and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ControlClient:
    """One connection to a running engine's control socket; use :func:`connect_engine` to make one."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock = sock
        self.path = path

    def request(self, op: str, *, reply_timeout: float | None = 30.0, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, **fields}`` and return the reply's ``result``; ``RemoteError`` on an error reply.

        ``reply_timeout`` bounds the wait for the reply (``None``: as long as the operation takes). Fields
        whose value is ``None`` are left out of the request.
        """
        self._sock.settimeout(reply_timeout)
        try:
            send_frame(self._sock, {"op": op, **{k: v for k, v in fields.items() if v is not None}})
            reply = recv_frame(self._sock, MAX_REPLY_BYTES)
        except ConnectionClosed:
            raise ControlError(f"the engine closed the control connection ({self.path})") from None
        except TimeoutError:
            raise ControlError(f"the engine did not answer {op!r} in time ({self.path})") from None
        except OSError as error:
            raise ControlError(f"control connection to {self.path} failed: {error}") from None
        if reply.get("ok") is True:
            result = reply.get("result")
            return result if isinstance(result, dict) else {"value": result}
        raise RemoteError(str(reply.get("code") or "aion_error"), str(reply.get("message") or "unknown error"))

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect_engine(data_dir: str | os.PathLike[str]) -> ControlClient | None:
    """A connection to the engine running on ``data_dir``, or ``None`` when none is running there.

    Raises ``ControlError`` for a control socket that is not owned by the current user or is open to group or
    other users: it is never connected to.
    """
    path = socket_path(data_dir)
    try:
        check_socket_file(path)
    except FileNotFoundError:
        return None
    try:
        sock = connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # a stale socket left by an engine that was killed
    except OSError as error:
        raise ControlError(f"cannot connect to {path}: {error.strerror or error}") from None
    return ControlClient(sock, path)

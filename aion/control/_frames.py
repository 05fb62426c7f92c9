"""Control-socket frames: a 4-byte big-endian length, then one msgpack map (never pickle).

Both directions use the same framing. A frame is at most :data:`MAX_FRAME_BYTES` long; anything else (a
length over the limit, bytes that are not msgpack, a value that is not a map) is a malformed frame and raises
:class:`~aion.errors.ControlError`.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, Final

import msgpack

from aion.errors import ControlError

#: The largest request frame body the server accepts, in bytes.
MAX_FRAME_BYTES: Final = 1024 * 1024
#: The largest reply frame body (replies may carry long histories), in bytes.
MAX_REPLY_BYTES: Final = 64 * 1024 * 1024

_HEADER = struct.Struct(">I")


class ConnectionClosed(Exception):  # noqa: N818 - a condition, not an error
    """The peer closed the connection cleanly between two frames."""


def pack_frame(message: dict[str, Any], limit: int = MAX_FRAME_BYTES) -> bytes:
    """The bytes of one frame holding ``message`` (plain msgpack: JSON-like values only), at most ``limit``."""
    try:
        body: bytes = msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise ControlError(f"cannot encode a control frame: {error}") from None
    if len(body) > limit:
        raise ControlError(f"control frame of {len(body)} bytes exceeds the limit of {limit} bytes")
    return _HEADER.pack(len(body)) + body


def send_frame(sock: socket.socket, message: dict[str, Any], limit: int = MAX_FRAME_BYTES) -> None:
    """Send ``message`` as one frame of at most ``limit`` bytes."""
    sock.sendall(pack_frame(message, limit))


def _recv_exactly(sock: socket.socket, size: int, *, at_start: bool) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 65536))
        if not chunk:
            if at_start and not chunks:
                raise ConnectionClosed()
            raise ControlError("the connection closed in the middle of a control frame")
        chunks += chunk
    return bytes(chunks)


def unpack_body(body: bytes) -> dict[str, Any]:
    """Decode one frame body; ``ControlError`` unless it is a msgpack map with string keys."""
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=True)  # the body is already size-bounded
    except Exception as error:  # msgpack raises several unrelated types for bad input
        raise ControlError(f"malformed control frame: {type(error).__name__}: {error}") from None
    if not isinstance(value, dict):
        raise ControlError(f"malformed control frame: expected a map, got {type(value).__name__}")
    return value


def recv_frame_within(
    sock: socket.socket, limit: int, *, idle: float, within: float, monotonic: Callable[[], float]
) -> dict[str, Any]:
    """Receive one request frame: wait up to ``idle`` seconds for it to begin, then all of it must arrive within
    ``within`` seconds, however the bytes trickle in (``ControlError`` otherwise; ``TimeoutError`` when idle)."""
    sock.settimeout(idle)
    first = sock.recv(1)
    if not first:
        raise ConnectionClosed()
    deadline = monotonic() + within

    def exactly(size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise ControlError(f"a control frame did not arrive within {within:g} s")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(min(size - len(chunks), 65536))
            except TimeoutError:
                raise ControlError(f"a control frame did not arrive within {within:g} s") from None
            if not chunk:
                raise ControlError("the connection closed in the middle of a control frame")
            chunks += chunk
        return bytes(chunks)

    (size,) = _HEADER.unpack(first + exactly(_HEADER.size - 1))
    if size > limit:
        raise ControlError(f"control frame of {size} bytes exceeds the limit of {limit} bytes")
    return unpack_body(exactly(size))


def recv_frame(sock: socket.socket, limit: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    """Receive one frame; ``ConnectionClosed`` at a clean end of stream, ``ControlError`` if malformed."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size, at_start=True))
    if size > limit:
        raise ControlError(f"control frame of {size} bytes exceeds the limit of {limit} bytes")
    return unpack_body(_recv_exactly(sock, size, at_start=False))

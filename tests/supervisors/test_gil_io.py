"""``send_without_blocking`` and ``recv_without_blocking``: the owner's socket calls that keep the GIL. What they
must do like ``socket.send``/``recv`` with ``MSG_DONTWAIT``: never block, say how much went, tell an empty socket
from one at its end, and fail loudly on a broken one."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from supervisors._gil_io import recv_without_blocking, send_without_blocking


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()
    b.close()


@pytest.mark.timeout(30)
def test_what_is_sent_is_read_back_exactly(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    assert send_without_blocking(a, b"first message") == len(b"first message")
    assert recv_without_blocking(b, 1 << 16) == b"first message"
    # A shorter read after a longer one returns only its own bytes (each thread reuses one buffer).
    assert send_without_blocking(a, b"xy") == 2
    assert recv_without_blocking(b, 1 << 16) == b"xy"
    # At most ``size`` bytes, the rest stays for the next read.
    send_without_blocking(a, b"0123456789")
    assert recv_without_blocking(b, 4) == b"0123"
    assert recv_without_blocking(b, 1 << 16) == b"456789"


@pytest.mark.timeout(30)
def test_an_empty_socket_reads_none_and_a_closed_peer_reads_end_of_file(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    assert recv_without_blocking(b, 1024) is None
    send_without_blocking(a, b"last")
    a.close()
    assert recv_without_blocking(b, 1024) == b"last"
    assert recv_without_blocking(b, 1024) == b""


@pytest.mark.timeout(30)
def test_a_full_socket_takes_part_of_a_send_and_then_nothing_without_blocking(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 4096  # 1 MiB: more than the buffers hold
    sent = send_without_blocking(a, big)
    assert 0 < sent < len(big)
    assert send_without_blocking(a, big[sent:]) == 0  # full: nothing goes, and the call returns
    received = bytearray()
    while (chunk := recv_without_blocking(b, 1 << 16)) is not None:
        received += chunk
    assert bytes(received) == big[:sent]


@pytest.mark.timeout(30)
def test_a_broken_or_closed_socket_raises(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.close()
    with pytest.raises(OSError):
        send_without_blocking(a, b"to nobody")  # EPIPE, and no SIGPIPE kills the test
    a.close()
    with pytest.raises(OSError):
        send_without_blocking(a, b"x")
    with pytest.raises(OSError):
        recv_without_blocking(a, 16)

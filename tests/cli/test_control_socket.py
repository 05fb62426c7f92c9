"""The control socket: mode 0600, malformed frames refused harmlessly, foreign sockets refused, stale replaced."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any

import msgpack
import pytest

import aion
from aion.control import MAX_FRAME_BYTES, ControlServer
from aion.control._frames import recv_frame
from tests.cli.conftest import Server, ok
from tests.cli.conftest import aion as run


def _raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def _send_raw(path: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    """Send ``data``; return the error reply and what follows it (``b""``: the server closed)."""
    with _raw(path) as sock:
        sock.sendall(data)
        reply = recv_frame(sock, 1 << 20)
        return reply, sock.recv(1)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.mark.timeout(60)
def test_malformed_frames_get_an_error_and_a_closed_connection(server: Server) -> None:
    path = server.data_dir / "control.sock"
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()

    for data, why in [
        (struct.pack(">I", MAX_FRAME_BYTES + 1), "exceeds the limit"),
        (_frame(b"\xc1\xc1\xc1"), "malformed control frame"),
        (_frame(msgpack.packb([1, 2, 3])), "expected a map"),
        (_frame(b"\x81\xa2op"), "malformed control frame"),  # truncated map
        (_frame(msgpack.packb({1: "int key"})), "malformed control frame"),
    ]:
        reply, after = _send_raw(path, data)
        assert reply["ok"] is False and reply["code"] == "control_error" and why in reply["message"], reply
        assert after == b""  # the connection was closed

    # a well-formed request for an unknown op is answered, and the connection stays usable
    with _raw(path) as sock:
        sock.sendall(_frame(msgpack.packb({"op": "pickle.loads"})))
        reply = recv_frame(sock, 1 << 20)
        assert reply["code"] == "invalid_argument" and "unknown control op" in reply["message"]
        sock.sendall(_frame(msgpack.packb({"op": "list", "limit": "ten"})))
        assert recv_frame(sock, 1 << 20)["code"] == "invalid_argument"
        sock.sendall(_frame(msgpack.packb({"op": "ping"})))
        assert recv_frame(sock, 1 << 20)["result"]["pid"] == server.proc.pid

    # a client that hangs up in the middle of a frame does not harm the engine either
    with _raw(path) as sock:
        sock.sendall(struct.pack(">I", 100) + b"half")
    ok("start", "greet", "--input", '"still"', "--wait", "--data-dir", server.data_dir)
    assert server.proc.poll() is None


@pytest.mark.timeout(60)
def test_a_socket_open_to_others_or_owned_by_another_user_is_refused(server: Server) -> None:
    path = server.data_dir / "control.sock"
    try:
        for mode in (0o660, 0o606):
            os.chmod(path, mode)
            refused = run("list", "--data-dir", server.data_dir)
            assert refused.code == 1 and refused.err.startswith("error[control_error]: "), refused
            assert f"mode {mode:04o}" in refused.err
        os.chmod(path, 0o600)
        ok("list", "--data-dir", server.data_dir)
        if os.geteuid() == 0:
            os.chown(path, 65534, -1)
            foreign = run("signal", "x", "y", "--data-dir", server.data_dir)
            assert foreign.code == 1 and foreign.err.startswith("error[control_error]: ")
            assert "owned by uid 65534" in foreign.err
    finally:
        os.chown(path, os.geteuid(), -1)
        os.chmod(path, 0o600)
    ok("list", "--data-dir", server.data_dir)


@pytest.mark.timeout(90)
def test_a_stale_socket_of_a_killed_engine_is_replaced(serve: Any, data_dir: Path) -> None:
    first = serve(data_dir)
    ok("start", "collector", "--input", "2", "--id", "survivor", "--data-dir", data_dir)
    ok("signal", "survivor", "item", "--payload", "1", "--data-dir", data_dir)
    first.kill()  # SIGKILL: no clean shutdown, the socket file stays
    assert stat.S_ISSOCK(os.lstat(data_dir / "control.sock").st_mode)

    stale = run("signal", "survivor", "item", "--data-dir", data_dir)
    assert stale.code == 1 and stale.err.startswith("error[engine_not_running]: ") and "aion serve" in stale.err
    assert "survivor" in ok("list", "--data-dir", data_dir).out  # from the files

    serve(data_dir)  # detects the stale socket and replaces it
    ok("signal", "survivor", "item", "--payload", "2", "--data-dir", data_dir)
    assert ok("result", "survivor", "--timeout", "30", "--json", "--data-dir", data_dir).json()["result"] == [1, 2]


@pytest.mark.timeout(60)
def test_a_client_never_finds_the_socket_open_to_others_while_the_engine_starts(tmp_path: Path) -> None:
    # A client that looks while the engine starts (a CLI command, a test waiting for `aion serve`) must find no
    # socket or a 0600 one: never the mode bind() gave it, which the client refuses ("open to other users").
    engine = aion.Engine(tmp_path / "data", workflows=[], activities=[])  # made, not started: only its data_dir
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "control.sock"
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                if mode != 0o600:
                    seen.append(f"{mode:04o}")

    watcher = threading.Thread(target=watch)
    previous = os.umask(0o022)  # what bind() applies: a socket file 0755 until it is chmod-ed
    watcher.start()
    try:
        for _ in range(300):
            server = ControlServer(engine)
            server.start()
            server.stop()
    finally:
        done.set()
        watcher.join()
        os.umask(previous)
    assert seen == []
    assert list((tmp_path / "data").iterdir()) == []  # nor a staging name left behind

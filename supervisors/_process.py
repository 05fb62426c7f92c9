"""Process side: what runs inside the processes the zygote has forked (never in the owner process).

A process child runs its target here (`run_target`), and a recyclable one then offers itself back to the
zygote for the next target. The nursery forks idle pool hosts (`nursery_main`), which warm up and wait for a
target (`host_wait`). The zygote's own loop is in `_zygote_server`, its bookkeeping of idle and recycled hosts
in `_pool`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from typing import Any, NoReturn

from . import _fds
from ._affinity import run_on
from ._channel import DATA, Channel, FrameReader, frame, make_pair, pack, unpack
from ._specs import resolve_target

MAX_CTL_MESSAGE = 1 << 20
#: A recyclable child runs at most this many targets in turn, then exits (bounds what one process accumulates).
MAX_RUNS_PER_HOST = 500


class _Terminated(BaseException):
    """Raised in a process child by SIGTERM, so that its ``finally`` blocks run before it dies of SIGTERM."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _die_of_sigterm() -> NoReturn:
    """End this process by the SIGTERM it caught (its ``finally`` blocks have run), as if it had not been caught."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # not reached: SIGTERM is not blocked here


def _leave_sigterm_to_the_kernel() -> None:
    """Between two targets of a recycled process: let a SIGTERM end it by its default action. No ``finally``
    block waits for it there, and a Python handler cannot be relied on while the process waits for its next
    target: one that lands after the interpreter's last check and before the wait blocks would run only once a
    target arrives. Blocked meanwhile, a SIGTERM that comes during the switch stays pending and then acts by
    default; one that came before runs the handler (``signal.signal`` runs pending handlers first)."""
    sigterm = {signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigterm)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, sigterm)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_target(fd: int | Channel, ref: str, args: list[Any], host: socket.socket | None = None) -> NoReturn:
    """Run ``target(channel, *args)`` in this (child) process, report an exception, and exit.

    ``host`` (a recyclable child's control socket to the zygote): when the target returns normally, the
    process does not exit but offers itself back to the zygote and runs the next target it is handed for the
    same reference (see `ZygoteServer`), up to `MAX_RUNS_PER_HOST` targets.
    """
    with contextlib.suppress(OSError):
        # Lead a process group of our own: whatever the target starts is in it, and dies with us (the zygote
        # kills the group when it reaps us).
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _on_sigterm)
    runs = 0
    try:
        while True:
            code = _run_one(fd, ref, args)
            runs += 1
            if host is None or code != 0 or runs >= MAX_RUNS_PER_HOST:
                os._exit(code)
            _leave_sigterm_to_the_kernel()
            task = _recycle(host)
            if task is None:
                os._exit(0)
            signal.signal(signal.SIGTERM, _on_sigterm)
            fd, ref, args, recycle = task
            if not recycle:
                host.close()
                host = None
    except _Terminated:
        _die_of_sigterm()


def _run_one(fd: int | Channel, ref: str, args: list[Any]) -> int:
    """Run one target on its channel and close the channel; return its exit code. A SIGTERM during the target
    (`_Terminated`, from the handler `run_target` installed) goes on to `run_target`, which ends the process by it
    once the ``finally`` blocks ran."""
    code = 70
    channel = fd if isinstance(fd, Channel) else Channel(socket.socket(fileno=fd))
    try:
        target = resolve_target(ref)
        target(channel, *args)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except _Terminated:
        raise  # not a failure of the target: reported as the SIGTERM it is
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            channel.send_exit_info(exc)
        code = 1
    finally:
        _flush_stdio()
    channel.close()
    return code


def _recycle(host: socket.socket) -> tuple[int | Channel, str, list[Any], bool] | None:
    """Offer this process back to the zygote (``["done"]`` with the owner's end of a fresh channel, which the
    zygote keeps for a speculative restart) and wait for the next target: ``(channel, ref, args, recycle)``,
    or None if the zygote does not want this process any more."""
    mine, theirs = make_pair()
    try:
        socket.send_fds(host, [pack(["done"])], [mine.fileno()])
        mine.close()
        return _receive_target(host, Channel(theirs))
    except OSError:
        return None


def _receive_target(host: socket.socket, channel: Channel) -> tuple[int | Channel, str, list[Any], bool] | None:
    """An idle host: wait for ``[ref, args, recycle]`` and, if the zygote sends one, a channel (else the target
    runs on ``channel``, the one made in advance); None on EOF."""
    data, fds, _flags, _addr = socket.recv_fds(host, MAX_CTL_MESSAGE, 1)
    if not data:
        return None
    ref, args, recycle = unpack(data)
    if fds:
        channel.close()
        return fds[0], ref, args, bool(recycle)
    return channel, ref, args, bool(recycle)


#: The zygote user's own warm-up (``Zygote.start(warm_up=...)``), inherited by every pool host.
_user_warm_up: str | None = None


def set_user_warm_up(ref: str | None) -> None:
    """In the zygote, before any host is forked: the ``"module:function"`` every idle pool host calls first."""
    global _user_warm_up
    _user_warm_up = ref


def _warm_up(channel: Channel) -> None:
    """In an idle pool host: run the code a child runs first (decode its target, resolve it, receive), so that
    the copy-on-write page faults it causes happen now rather than when it is handed a child."""
    if _user_warm_up is not None:
        with contextlib.suppress(Exception):
            resolve_target(_user_warm_up)()
    ref, args = unpack(pack([f"{__name__}:run_target", [1, "x", b"y", 1.5, None, {"k": [True]}]]))
    resolve_target(ref)
    channel.poll(0.0)
    reader = FrameReader()
    reader.feed(frame(DATA, pack(["ping", args])))
    item = reader.next()
    if item is not None:
        unpack(item[1])


def host_wait(sock: socket.socket, chan: socket.socket) -> NoReturn:
    """An idle pool host: wait for a target (and a channel, else use the one made with it), then run it."""
    channel = Channel(chan)
    _warm_up(channel)
    try:
        task = _receive_target(sock, channel)
    except OSError:
        task = None
    if task is None:
        os._exit(0)
    fd, ref, args, recycle = task
    if not recycle:
        sock.close()
    run_target(fd, ref, args, sock if recycle else None)


def nursery_main(sock: socket.socket, zygote_pid: int, cpus: frozenset[int] | None = None) -> NoReturn:
    """The nursery: fork pool hosts on request, each through a short-lived intermediate process, so that the
    host is re-parented to the zygote (a child subreaper) and the zygote never has to fork itself. It and the
    hosts it forks run on ``cpus`` (None: the zygote's)."""
    run_on(cpus)
    sock.setblocking(True)
    while True:
        try:
            data = sock.recv(1024)
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)
        msg = unpack(data)
        if msg[0] == "fork":
            for _ in range(msg[1]):
                _fork_host(sock, zygote_pid)


def _fork_host(nursery: socket.socket, zygote_pid: int) -> None:
    """In the nursery: fork one pool host (via an intermediate that exits at once)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    chan_mine, chan_theirs = make_pair()
    middle = os.fork()
    if middle == 0:
        try:
            middle = os.getpid()
            host = os.fork()
            if host == 0:
                _host_main(nursery, zygote_pid, middle, (mine, theirs), (chan_mine, chan_theirs))
            # Before we exit (so before the host can be the zygote's child): the zygote counts it as coming.
            nursery.send(pack(["forked", host]))
        finally:
            os._exit(0)
    for s in (mine, theirs, chan_mine, chan_theirs):
        s.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(middle, 0)


def _host_main(
    nursery: socket.socket,
    zygote_pid: int,
    middle: int,
    ctl: tuple[socket.socket, socket.socket],
    chan: tuple[socket.socket, socket.socket],
) -> NoReturn:
    """A new pool host: wait to be the zygote's child, give the zygote its ends of our sockets, then idle."""
    (mine, theirs), (chan_mine, chan_theirs) = ctl, chan
    try:
        while (parent := os.getppid()) != zygote_pid:
            if parent != middle:  # adopted by someone else: the zygote is gone
                os._exit(0)
            time.sleep(0.0001)
        _fds.die_with_parent(zygote_pid)
        socket.send_fds(nursery, [pack(["host", os.getpid()])], [mine.fileno(), chan_mine.fileno()])
        for s in (nursery, mine, chan_mine):
            s.close()
    except BaseException:
        os._exit(0)
    host_wait(theirs, chan_theirs)

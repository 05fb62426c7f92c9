"""Process targets for the tests (module-level, so the zygote resolves them by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import supervisors as sv


def worker(channel: sv.Channel, *args: Any) -> None:
    """Answer commands: ping, raise, exit (os._exit), return, forward system messages, link, monitor."""
    while True:
        msg = channel.recv()
        if isinstance(msg, sv.Down):
            channel.send(["down", msg.ref, msg.pid, msg.reason.to_dict()])
            continue
        if isinstance(msg, sv.ExitSignal):
            channel.send(["exit_signal", msg.pid, msg.reason.to_dict()])
            continue
        op = msg[0]
        if op == "ping":
            channel.send(["pong", msg[1]])
        elif op == "echo":
            channel.send(["echo", msg[1]])
        elif op == "raise":
            raise ValueError(msg[1])
        elif op == "exit":
            os._exit(msg[1])
        elif op == "return":
            return
        elif op == "link":
            channel.link(msg[1])
            channel.send(["linked", msg[1]])
        elif op == "monitor":
            channel.send(["monitoring", channel.monitor(msg[1])])
        elif op == "trap_exit":
            channel.trap_exit(msg[1])
            channel.send(["trapping", msg[1]])


def crash_n_times(channel: sv.Channel, counter: str, n: int) -> None:
    """Raise at start for the first ``n`` runs (counted in the file ``counter``), then serve like `worker`."""
    path = Path(counter)
    runs = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(runs))
    if runs <= n:
        raise RuntimeError(f"crash {runs}")
    worker(channel)


def always_crash(channel: sv.Channel) -> None:
    """Raise at once."""
    raise RuntimeError("always")


def ignore_sigterm(channel: sv.Channel) -> None:
    """Ignore SIGTERM, so only SIGKILL ends it; say when ready."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel.send("ready")
    while True:
        time.sleep(1)


def graceful(channel: sv.Channel) -> None:
    """Tell the owner, from a finally block, that SIGTERM let it clean up."""
    try:
        channel.send("ready")
        while True:
            channel.recv()
    finally:
        channel.send("cleaned-up")


def graceful_worker(channel: sv.Channel) -> None:
    """Say ready, then return on ``["return"]``; tell the owner from a finally block that it got to clean up
    (also when SIGTERM ends it)."""
    try:
        channel.send("ready")
        while channel.recv() != ["return"]:
            pass
    finally:
        channel.send("cleaned-up")


def echo_all(channel: sv.Channel) -> None:
    """Echo every message back, as is."""
    while True:
        channel.send(channel.recv())


def chatter(channel: sv.Channel, threads: int, count: int) -> None:
    """Send ``count`` numbered messages from each of ``threads`` threads, then wait for "bye"."""
    import threading

    def run(t: int) -> None:
        for i in range(count):
            channel.send([t, i])

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    channel.send("done")
    channel.recv()


def burst(channel: sv.Channel, count: int) -> None:
    """Send "first"; on "go", send ``count`` numbered messages back to back and return (the process exits)."""
    channel.send("first")
    channel.recv()
    for i in range(count):
        channel.send(i)


def send_and_exit(channel: sv.Channel, count: int) -> None:
    """On "go", send ``count`` messages ``[pid, i]`` back to back, then exit at once (no goodbye)."""
    channel.recv()
    for i in range(count):
        channel.send([os.getpid(), i])
    os._exit(0)


def recv_timeout(channel: sv.Channel) -> None:
    """Report how recv timeouts and poll behave."""
    try:
        channel.recv(timeout=0.05)
    except TimeoutError:
        channel.send("timeout")
    channel.send(["poll", channel.poll(0.0)])
    channel.send("go")
    channel.send(["poll", channel.poll(10.0)])
    channel.send(["got", channel.recv()])
    with contextlib.suppress(sv.ChannelClosedError):
        channel.recv()


def mark_warm_up() -> None:
    """A zygote warm-up: each pool host leaves a file named by its pid in ``$SV_TEST_WARM_UP_DIR``."""
    Path(os.environ["SV_TEST_WARM_UP_DIR"], str(os.getpid())).touch()


def failing_warm_up() -> None:
    """A zygote warm-up that fails: the pool must work all the same."""
    raise RuntimeError("warm-up failed")


#: Targets `serve_once` ran in this process: a recycled process keeps module state, so this counts its runs.
_served = 0


def serve_once(channel: sv.Channel, name: str) -> None:
    """One run, as a workflow process does it: wait for ``["run", name]``, answer ``["ack", name, pid, n]`` (``n``:
    the how-manieth run of this process), then on ``"end"`` return (normal: the process may be recycled), on
    ``"crash"`` raise, on ``"exit"`` exit with 3. A message for another name is reported as ``["wrong", ...]``."""
    global _served
    _served += 1
    msg = channel.recv()
    if msg != ["run", name]:
        channel.send(["wrong", name, msg])
        return
    channel.send(["ack", name, os.getpid(), _served])
    fate = channel.recv()
    if fate == "crash":
        raise RuntimeError(f"{name} crashed")
    if fate == "exit":
        os._exit(3)

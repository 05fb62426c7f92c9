"""`Batch`: what the hub's callbacks add in one round reaches ``flush`` in one call, in order, and always before
the exit of the process that sent it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import supervisors as sv
from tests.helpers import wait_until

from . import targets


@pytest.mark.timeout(30)
def test_what_arrives_while_the_hub_is_busy_is_handed_over_in_one_call(zygote: sv.Zygote) -> None:
    events: list[Any] = []
    channels: dict[int, sv.OwnerChannel] = {}
    threads: set[str] = set()

    def flush(items: list[Any]) -> None:
        threads.add(threading.current_thread().name)
        events.append(("flush", list(items)))
        if "first" in items:
            next(iter(channels.values())).send("go")
            time.sleep(0.5)  # the hub is busy: the process sends everything meanwhile

    batch: sv.Batch[Any] = sv.Batch(flush)
    zygote.spawn(
        targets.burst,
        (100,),
        on_start=channels.__setitem__,
        on_message=batch.add,
        on_exit=lambda _pid, reason: events.append(("exit", reason.kind)),
    )
    wait_until(lambda: events and events[-1][0] == "exit", timeout=10)
    assert events == [("flush", ["first"]), ("flush", list(range(100))), ("exit", "normal")]
    assert threads == {"supervisors-hub"}


@pytest.mark.timeout(60)
def test_every_message_of_a_process_is_handed_over_before_its_exit(zygote: sv.Zygote) -> None:
    order: list[tuple[str, int, Any]] = []
    flushes: list[int] = []

    def flush(items: list[tuple[int, Any]]) -> None:
        flushes.append(len(items))
        order.extend(("msg", pid, msg) for pid, msg in items)
        if len(flushes) == 1:
            time.sleep(0.3)  # the hub is busy: the next round has messages and exits

    batch: sv.Batch[tuple[int, Any]] = sv.Batch(flush)
    channels: dict[int, sv.OwnerChannel] = {}
    for _ in range(6):
        zygote.spawn(
            targets.send_and_exit,
            (300,),
            on_start=channels.__setitem__,
            on_message=lambda msg: batch.add((msg[0], msg[1])),
            on_exit=lambda pid, reason: order.append(("exit", pid, reason.kind)),
        )
    for channel in channels.values():
        channel.send("go")
    wait_until(lambda: sum(entry[0] == "exit" for entry in order) == len(channels), timeout=30)
    for pid in channels:
        mine = [entry for entry in order if entry[1] == pid]
        assert mine == [("msg", pid, i) for i in range(300)] + [("exit", pid, "normal")]
    assert sum(flushes) == 6 * 300
    assert len(flushes) < 6 * 300  # messages were batched


@pytest.mark.timeout(60)
def test_a_supervised_process_exit_reaches_on_exit_after_its_last_message(
    start_sup: Any,
) -> None:
    seen: list[Any] = []

    def flush(items: list[Any]) -> None:
        seen.extend(items)
        if len(seen) == 1:
            time.sleep(0.3)  # the hub is busy: the next round has messages and the exit

    batch: sv.Batch[Any] = sv.Batch(flush)
    done = threading.Event()

    def on_exit(child_id: str, reason: sv.ExitReason) -> None:
        seen.append(("exit", child_id, reason.kind))
        done.set()

    sup = start_sup(sv.SupervisorSpec(id="root"))
    sup.start_child(
        sv.ProcessSpec(
            id="sender",
            target=targets.send_and_exit,
            args=(500,),
            restart=sv.Restart.TEMPORARY,
            on_start=lambda _child_id, _pid, channel: channel.send("go"),
            on_message=lambda child_id, msg: batch.add((child_id, msg[1])),
            on_exit=on_exit,
        )
    )
    assert done.wait(20)
    assert seen == [("sender", i) for i in range(500)] + [("exit", "sender", "normal")]


@pytest.mark.timeout(10)
def test_outside_the_hub_an_item_is_handed_over_at_once_in_the_callers_thread() -> None:
    got: list[tuple[list[int], str]] = []
    batch: sv.Batch[int] = sv.Batch(lambda items: got.append((items, threading.current_thread().name)))
    batch.add(1)
    batch.add(2)
    me = threading.current_thread().name
    assert got == [([1], me), ([2], me)]


@pytest.mark.timeout(30)
def test_a_failing_flush_is_logged_and_the_hub_goes_on(zygote: sv.Zygote, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[list[Any]] = []

    def flush(items: list[Any]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("consumer failed")

    batch: sv.Batch[Any] = sv.Batch(flush)
    channels: list[sv.OwnerChannel] = []
    replies: list[Any] = []
    zygote.spawn(targets.echo_all, on_start=lambda _pid, ch: channels.append(ch), on_message=batch.add)
    wait_until(lambda: channels, timeout=10)
    channels[0].send("a")
    wait_until(lambda: calls, timeout=10)
    zygote.spawn(targets.echo_all, on_start=lambda _pid, ch: channels.append(ch), on_message=replies.append)
    wait_until(lambda: len(channels) == 2, timeout=10)
    channels[0].send("b")
    channels[1].send("c")
    wait_until(lambda: len(calls) == 2 and replies, timeout=10)
    assert calls == [["a"], ["b"]]
    assert replies == ["c"]
    assert "consumer failed" in caplog.text

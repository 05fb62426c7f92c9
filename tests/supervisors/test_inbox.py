"""`SimpleInbox`: a pykka actor on a ``queue.SimpleQueue`` inbox behaves as one on pykka's own inbox."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pykka
import pytest

import supervisors as sv


class _Echo(sv.SimpleInbox, pykka.ThreadingActor):
    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "block":
            self.gate.wait(5)
        self.seen.append(message)
        return list(self.seen)


@pytest.mark.timeout(10)
def test_messages_are_handled_in_order_and_asks_answered() -> None:
    ref = _Echo.start(threading.Event())
    try:
        assert isinstance(ref.actor_inbox, queue.SimpleQueue)

        def send(k: int) -> None:
            for i in range(200):
                ref.tell((k, i))

        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        seen: list[Any] = ref.ask("last", timeout=5)  # type: ignore[assignment]
        assert seen[-1] == "last"
        for k in range(4):
            assert [m[1] for m in seen[:-1] if m[0] == k] == list(range(200))
    finally:
        ref.stop()


@pytest.mark.timeout(10)
def test_a_message_queued_behind_stop_is_answered_with_actor_dead() -> None:
    gate = threading.Event()
    ref = _Echo.start(gate)
    blocked = ref.ask("block", block=False)
    stopped = threading.Thread(target=ref.stop)
    stopped.start()
    time.sleep(0.1)  # the stop is queued behind "block"
    late = ref.ask("late", block=False)
    gate.set()
    assert blocked.get(timeout=5) == ["block"]
    stopped.join(5)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)

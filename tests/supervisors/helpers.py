"""Test helpers: waiting on conditions with a deadline, recording what supervised children do."""

from __future__ import annotations

import threading
from typing import Any

import supervisors as sv
from tests.helpers import wait_until

__all__ = ["Recorder", "wait_until"]


class Recorder:
    """Collects on_start / on_message / on_exit / on_give_up calls of process children, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: dict[str, sv.OwnerChannel] = {}
        self.starts: list[tuple[str, int]] = []
        self.messages: list[tuple[str, Any]] = []
        self.exits: list[tuple[str, sv.ExitReason]] = []
        self.give_ups: list[tuple[str, sv.ExitReason]] = []

    def on_start(self, child_id: str, pid: int, channel: sv.OwnerChannel) -> None:
        with self.lock:
            self.channels[child_id] = channel
            self.starts.append((child_id, pid))

    def on_message(self, child_id: str, msg: Any) -> None:
        with self.lock:
            self.messages.append((child_id, msg))

    def on_exit(self, child_id: str, reason: sv.ExitReason) -> None:
        with self.lock:
            self.exits.append((child_id, reason))

    def on_give_up(self, child_id: str, reason: sv.ExitReason) -> None:
        with self.lock:
            self.give_ups.append((child_id, reason))

    def exits_of(self, child_id: str) -> list[sv.ExitReason]:
        with self.lock:
            return [r for c, r in self.exits if c == child_id]

    def messages_of(self, child_id: str) -> list[Any]:
        with self.lock:
            return [m for c, m in self.messages if c == child_id]

    def spec(self, child_id: str, target: Any, *args: Any, **kw: Any) -> sv.ProcessSpec:
        """A ProcessSpec wired to this recorder."""
        return sv.ProcessSpec(
            id=child_id,
            target=target,
            args=args,
            on_start=self.on_start,
            on_message=self.on_message,
            on_exit=self.on_exit,
            on_give_up=self.on_give_up,
            **kw,
        )

    def ping(self, child_id: str, token: Any, timeout: float = 10.0) -> None:
        """Send ``["ping", token]`` to the child and wait for ``["pong", token]``."""
        with self.lock:
            channel = self.channels[child_id]
        channel.send(["ping", token])
        wait_until(lambda: ["pong", token] in self.messages_of(child_id), timeout)


def children_by_id(sup: sv.Supervisor) -> dict[str, sv.ChildInfo]:
    """which_children() as a dict."""
    return {c.id: c for c in sup.which_children()}

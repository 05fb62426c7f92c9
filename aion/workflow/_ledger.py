"""The command ledger of one run: the commands its code issues, matched against the anchors of its history.

A command whose correlation key has an anchor in history was done already: it is checked (kind, type) and not
issued again. A command with no anchor is new and waits in the outbox, which the runtime hands to the engine
only once the whole history has replayed without divergence. After the replay every anchor must have been
matched. The first mismatch is the run's divergence: the outbox is emptied and nothing more is ever issued.

It owns the anchors, the matches, the outbox and the divergence, and nothing else: it never runs workflow code,
never resolves a future and never sends a command anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aion import events as ev
from aion.errors import NonDeterminismError
from aion.workflow._commands import ANCHOR_KEYS, Command, Key, ScheduleActivity, describe_event
from aion.workflow._context import Diverged


class CommandLedger:
    """The commands of the run of ``workflow_id``; ``on_diverge`` is called once, at its first divergence."""

    def __init__(self, workflow_id: str, on_diverge: Callable[[], None]) -> None:
        self._workflow_id = workflow_id
        self._on_diverge = on_diverge
        self._anchors: dict[Key, ev.Event] = {}
        self._matched: set[Key] = set()
        self._cancels_issued: set[Key] = set()
        self._outbox: list[Command] = []
        #: The run's divergence, once found (``None`` until then).
        self.divergence: NonDeterminismError | None = None

    def record_anchors(self, history: Sequence[ev.Event]) -> None:
        """Remember the anchors of ``history``: the commands already done."""
        anchors = self._anchors
        for event in history:
            make = ANCHOR_KEYS[type(event)]  # anchor_key, inlined: this runs for every event of a replay
            if make is not None:
                key = make(event)
                if key is not None:
                    anchors[key] = event

    def recorded(self, key: Key) -> bool:
        """Whether history holds the anchor of the command ``key`` (it was issued before this replay)."""
        return key in self._anchors

    def check_all_matched(self) -> None:
        """After the replay: diverge at the first anchor no command matched (the code no longer does it)."""
        if len(self._matched) == len(self._anchors):  # only anchors are ever matched: all of them were
            return
        unmatched = [event for key, event in self._anchors.items() if key not in self._matched]
        if unmatched:
            first = min(unmatched, key=lambda event: event.seq)
            self.diverge(first.seq, describe_event(first), "nothing (the code no longer does it)")

    def has_anchor(self, key: Key) -> bool:
        """Whether history holds an anchor with ``key``."""
        return key in self._anchors

    def consume(self, key: Key) -> None:
        """Count the anchor with ``key`` (if any) as matched without a command: a deprecated patch's marker."""
        if key in self._anchors:
            self._matched.add(key)

    def issue_once(self, command: Command) -> None:
        """:meth:`issue`, unless a command with the same key was issued this way before (cancellations)."""
        if command.key not in self._cancels_issued:
            self._cancels_issued.add(command.key)
            self.issue(command)

    def issue(self, command: Command) -> None:
        """Match ``command`` against its anchor, or queue it as new; raise :class:`Diverged` at a mismatch (or
        once the run has diverged), to stop the code there."""
        if self.divergence is not None:
            raise Diverged()
        key = command.key
        anchor = self._anchors.get(key)
        if anchor is None:
            self._outbox.append(command)
            return
        if key in self._matched or not command.matches(anchor):
            self.diverge(anchor.seq, describe_event(anchor), command.describe())
            raise Diverged()
        self._matched.add(key)

    def issue_activity(self, activity_id: int, activity_type: str, args: list[Any], options: dict[str, Any]) -> None:
        """:meth:`issue` of ``ScheduleActivity(activity_id, activity_type, args, options)``, which is only built
        when it is not the match of its anchor (on replay nearly every one is)."""
        key = ("activity", activity_id)
        anchor = self._anchors.get(key)
        if (
            anchor is not None
            and self.divergence is None
            and key not in self._matched
            and ScheduleActivity.anchored_by(anchor, activity_type)
        ):
            self._matched.add(key)
            return
        self.issue(ScheduleActivity(activity_id, activity_type, args, options))

    def diverge(self, seq: int, expected: str, found: str) -> None:
        """Record the run's divergence at ``seq`` (only the first one counts) and drop the outbox."""
        if self.divergence is None:
            self.divergence = NonDeterminismError(self._workflow_id, seq, expected, found)
            self._outbox.clear()
            self._on_diverge()

    def raise_divergence(self) -> None:
        """Raise the run's divergence, if it has one."""
        if self.divergence is not None:
            raise self.divergence

    def take_outbox(self) -> list[Command]:
        """The new commands queued since the last call."""
        commands, self._outbox = self._outbox, []
        return commands

"""Patches: ``workflow.patched`` and ``workflow.deprecate_patch``, and the per-run answers behind them.

A patch guards a change of a workflow's steps so that it can be deployed under runs in flight (see
docs/versioning.md). A run executing live records a marker (``MarkerRecorded``, name ``patch:<id>``, a command
anchor matched by key) and takes the new branch; a replay of a history that passed this point without the marker
takes the old one. It owns those answers and nothing else: the marker goes through the run's command ledger.
"""

from __future__ import annotations

from aion.errors import InvalidArgumentError
from aion.workflow._commands import PATCH_MARKER, RecordMarker
from aion.workflow._ledger import CommandLedger


class Patches:
    """The patch answers of one run: the same answer for every call of one patch id."""

    def __init__(self, ledger: CommandLedger) -> None:
        self._ledger = ledger
        self._answers: dict[str, bool] = {}

    def patched(self, patch_id: str, *, passed: bool) -> bool:
        """Whether the run takes the code guarded by ``patch_id``. ``passed``: the run is replaying a point it
        went past before (history holds later events), so without the marker it ran the old code there."""
        known = self._answers.get(patch_id)
        if known is not None:
            return known
        name = PATCH_MARKER + patch_id
        taken = self._ledger.has_anchor(("marker", name)) or not passed
        self._answers[patch_id] = taken
        if taken:
            self._ledger.issue(RecordMarker(name, patch_id))
        return taken

    def deprecate(self, patch_id: str) -> None:
        """The patch's new code is the only code now: its marker, in runs that have it, needs no command."""
        self._answers[patch_id] = True
        self._ledger.consume(("marker", PATCH_MARKER + patch_id))


def check_patch_id(patch_id: object) -> str:
    """A patch id: a non-empty string (``InvalidArgumentError`` otherwise)."""
    if not isinstance(patch_id, str) or not patch_id:
        raise InvalidArgumentError(f"a patch id must be a non-empty string, got {patch_id!r}")
    return patch_id

"""The succession of hubs: when a zygote dies unasked and a new one is started in its place, the old hub names the
new one its successor, and spawns asked of the old one go there (part of the hub, kept in its own module)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from ._reasons import ZYGOTE_EXITED as _REASON_ZYGOTE_EXITED

logger = logging.getLogger("supervisors")

#: The error of a spawn whose zygote died before it answered.
ZYGOTE_EXITED: Final = _REASON_ZYGOTE_EXITED
#: How long a spawn asked of a dead zygote waits for its replacement (the restart forks and imports preloads).
SUCCESSION_WAIT: Final = 120.0


class Succession:
    """A hub's link to the hub of the zygote started in place of its own."""

    def __init__(self) -> None:
        self.on_gone: Callable[[int | None], None] | None = None
        """Called with the zygote's wait status when it exited, before its children's exits are reported."""
        self.successor: Any = None
        """The hub of the zygote started in place of this one's (set by ``on_gone``): spawns go there."""
        self._succession = threading.Event()  # set once on_gone has returned

    def next_hub(self) -> Any:
        """Once this hub's zygote is gone: the hub of its replacement (waiting for the restart), or None."""
        self._succession.wait(SUCCESSION_WAIT)
        return self.successor

    def announce_gone(self, status: int | None) -> None:
        """The zygote is gone: let ``on_gone`` start a successor, then let waiting spawns look for it."""
        if self.on_gone is not None:
            try:
                self.on_gone(status)
            except Exception:
                logger.exception("on_gone of the zygote failed")
        self._succession.set()

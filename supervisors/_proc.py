"""The owner side's record of one process child (`Proc`), the callbacks it carries, and `SpareOwner`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._channel import FrameReader, OwnerChannel
from ._latch import Latch
from ._reasons import Down, ExitReason

OnStart = Callable[[int, OwnerChannel], None]
OnMessage = Callable[[Any], None]
OnExit = Callable[[int, ExitReason, "Proc | None"], None]  # (pid, reason, spare or None)
Notify = Callable[[Down], None] | Any  # a callable, or a pykka ActorRef (told the Down)


@dataclass(eq=False)
class Proc:
    """The hub's record of one live process child."""

    pid: int
    channel: OwnerChannel
    on_message: OnMessage | None
    on_exit: OnExit | None
    trap_exit: bool
    token: int = 0
    """The zygote's token for this incarnation of ``pid`` (a recycled process hosts several in turn)."""
    reader: FrameReader = field(default_factory=FrameReader)
    exc_info: list[Any] | None = None
    link_kill: str | None = None
    shutdown_requested: bool = False
    reason: ExitReason | None = None
    exited: Latch = field(default_factory=Latch)
    registered: bool = False
    owner: SpareOwner | None = None
    provisional: bool = False
    """A spare not yet adopted: its channel is not read and its exit is held in ``held``."""
    discarded: bool = False
    held: tuple[int | None, Proc | None] | None = None

    def exit_reason(self, status: int | None) -> ExitReason:
        """Why this incarnation exited, from its wait ``status`` (None: the zygote exited), what it sent before
        dying, and what its owner asked of it."""
        if self.exc_info is not None:
            exc_type, message, tb = self.exc_info
            return ExitReason(kind="exception", exc_type=exc_type, message=message, traceback=tb)
        base = ExitReason.zygote_exited() if status is None else ExitReason.from_wait_status(status)
        if self.shutdown_requested:
            return ExitReason(kind="shutdown", signal=base.signal, exit_code=base.exit_code)
        if self.link_kill is not None and base.kind == "killed":
            return ExitReason(kind="killed", signal=base.signal, message=self.link_kill)
        return base


class SpareOwner:
    """Whoever receives the spares of some process children (a supervisor); `SpareBook.close_owner` discards
    the spares it will never see."""

    closed = False

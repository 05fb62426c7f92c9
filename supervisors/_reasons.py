"""Exit reasons, and the messages that carry them (`Down`, `ExitSignal`)."""

from __future__ import annotations

import os
import signal as _signal
import traceback as _traceback
from dataclasses import asdict, dataclass
from typing import Any, Literal

ExitKind = Literal["normal", "killed", "exception", "exit_code", "shutdown", "noproc"]


def _signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


#: The message of the exit of a process child that went down with its zygote.
ZYGOTE_EXITED = "the zygote exited"


@dataclass(frozen=True, slots=True)
class ExitReason:
    """Why a supervised child (a process, an actor or a supervisor) exited.

    ``kind`` is one of:

    - ``"normal"``: the target returned (or called ``sys.exit(0)``);
    - ``"killed"``: the process died of a signal, named in ``signal`` (``"SIGKILL"``);
    - ``"exception"``: the target raised; ``exc_type``, ``message`` and ``traceback`` were sent by the child
      over its channel before it died (a supervisor giving up also exits with this kind);
    - ``"exit_code"``: the process exited with a non-zero status (``os._exit(3)``), in ``exit_code``;
    - ``"shutdown"``: its supervisor (or owner) stopped it on purpose;
    - ``"noproc"``: a link or monitor was set on a process that no longer existed.
    """

    kind: ExitKind
    signal: str | None = None
    exit_code: int | None = None
    exc_type: str | None = None
    message: str | None = None
    traceback: str | None = None

    @property
    def is_abnormal(self) -> bool:
        """True unless the exit was ``normal`` or a deliberate ``shutdown`` (as OTP decides for transient)."""
        return self.kind not in ("normal", "shutdown")

    @classmethod
    def normal(cls) -> ExitReason:
        """A normal exit."""
        return _NORMAL

    @classmethod
    def shutdown(cls) -> ExitReason:
        """A deliberate stop by the owner."""
        return _SHUTDOWN

    @classmethod
    def zygote_exited(cls) -> ExitReason:
        """The death of a process child that went down with its zygote (`lost_with_zygote`)."""
        return cls(kind="killed", signal="SIGKILL", message=ZYGOTE_EXITED)

    @property
    def lost_with_zygote(self) -> bool:
        """True if the process died because its zygote did: not a failure of its own, so its restart is not
        counted in any intensity (the zygote's restarts are counted by the zygote's)."""
        return self.kind == "killed" and self.message == ZYGOTE_EXITED

    @classmethod
    def killed_by(cls, signum: int, message: str | None = None) -> ExitReason:
        """Death by the signal ``signum``."""
        return cls(kind="killed", signal=_signal_name(signum), message=message)

    @classmethod
    def from_exception(cls, exc: BaseException) -> ExitReason:
        """An exception, with its formatted traceback."""
        return cls(
            kind="exception",
            exc_type=_qualified_type(exc),
            message=str(exc),
            traceback="".join(_traceback.format_exception(exc)),
        )

    @classmethod
    def from_wait_status(cls, status: int) -> ExitReason:
        """Decode an ``os.waitpid`` status."""
        if os.WIFSIGNALED(status):
            return cls.killed_by(os.WTERMSIG(status))
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return _NORMAL
        return cls(kind="exit_code", exit_code=code)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (used by ``tree()`` and on the wire)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExitReason:
        """Inverse of `to_dict`."""
        return cls(**data)

    def __str__(self) -> str:
        if self.kind == "killed":
            return f"killed by {self.signal}" + (f" ({self.message})" if self.message else "")
        if self.kind == "exception":
            return f"exception {self.exc_type}: {self.message}"
        if self.kind == "exit_code":
            return f"exit code {self.exit_code}"
        return self.kind


_NORMAL = ExitReason(kind="normal")
_SHUTDOWN = ExitReason(kind="shutdown")


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class Down:
    """A monitor fired: the process ``pid`` exited with ``reason``. Delivered once per monitor ``ref``."""

    ref: int
    pid: int
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class ExitSignal:
    """An exit signal from the linked process ``pid``, received as a message by a process trapping exits."""

    pid: int
    reason: ExitReason

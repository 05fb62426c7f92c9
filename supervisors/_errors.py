"""Every error the library raises, under one base class, `SupervisionError`.

Each class also keeps the builtin base it has always had (``RuntimeError``, ``ValueError``, ``EOFError``), so
``except`` clauses written against those still catch it.
"""

from __future__ import annotations


class SupervisionError(Exception):
    """Base class of every error raised by `supervisors`."""


class SupervisorError(SupervisionError, RuntimeError):
    """A supervisor call failed: unknown child, duplicate id, supervisor stopping, child failed to start."""


class StartError(SupervisorError):
    """A child (or a supervisor's static children) could not be started."""


class SpawnError(SupervisionError, RuntimeError):
    """A process child could not be started (unknown target, zygote gone, ...)."""


class ZygoteError(SupervisionError, RuntimeError):
    """The zygote could not be started (a preload module failed to import, ...)."""


class TargetError(SupervisionError, ValueError):
    """A process target cannot be referred to by name, or cannot be resolved in the zygote."""


class ChannelClosedError(SupervisionError, EOFError):
    """The other end of a channel is gone (the process exited, or the owner closed it)."""

"""Every restart decision, as pure functions of the supervisor's state, an event and ``now``.

This module owns the rules of supervision: restart intensity (`add_restart`, the one place restarts are
counted, for a supervisor and for a child with its own ``max_restarts``), the restart type matched against an
exit reason (`restarts_after`), the strategy's group of children to restart, giving up on one child,
escalation (`decide_exit`, `escalation_reason`), and whether a child may be restarted speculatively by the
zygote (`should_arm`). Nothing here reads a clock, starts a thread or touches a process: the supervisor actor
passes ``now`` in and applies the `ExitDecision` it gets back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ._reasons import ExitReason
from ._specs import Restart, Strategy


def add_restart(
    restarts: tuple[float, ...], now: float, max_restarts: int | None, max_seconds: float
) -> tuple[tuple[float, ...], bool]:
    """Record a restart at ``now`` (as OTP's ``add_restart/1``): the restart times still within ``max_seconds``
    of ``now``, ``now`` included, and whether there are now more than ``max_restarts`` of them (the intensity
    is exceeded). ``max_restarts=None`` means no limit: nothing is recorded, never exceeded."""
    if max_restarts is None:
        return restarts, False
    since = now - max_seconds
    first = 0
    # Times are in the order they were recorded (a monotonic clock's), so those out of the window are at the
    # front: no pass over the whole log (it holds up to max_restarts times) on every exit, as a filter would.
    while first < len(restarts) and restarts[first] < since:
        first += 1
    kept = (*restarts[first:], now)
    return kept, len(kept) > max_restarts


@dataclass(frozen=True, slots=True)
class Intensity:
    """A restart intensity (at most ``max_restarts`` restarts in ``max_seconds``) and the recent restarts."""

    max_restarts: int | None
    max_seconds: float
    restarts: tuple[float, ...] = ()
    """Monotonic times of the restarts counted so far (some may be older than the window)."""

    def add(self, now: float) -> tuple[Intensity, bool]:
        """This intensity with a restart at ``now`` recorded, and whether that exceeds it (`add_restart`)."""
        restarts, exceeded = add_restart(self.restarts, now, self.max_restarts, self.max_seconds)
        return Intensity(self.max_restarts, self.max_seconds, restarts), exceeded

    def at_limit(self, now: float) -> bool:
        """True if one more restart at ``now`` would exceed the intensity."""
        return add_restart(self.restarts, now, self.max_restarts, self.max_seconds)[1]


class ChildView(Protocol):
    """What the decisions need to know about a child (the supervisor's child record provides it)."""

    @property
    def restart(self) -> Restart:
        """Its restart type."""

    @property
    def running(self) -> bool:
        """True while an incarnation runs."""

    @property
    def dynamic(self) -> bool:
        """Started by ``start_child`` (removed when it exits for good) rather than listed in the spec."""

    @property
    def intensity(self) -> Intensity | None:
        """Its own restart intensity (``max_restarts`` of a process or actor spec), if it has one."""


C = TypeVar("C", bound=ChildView)


def restarts_after(restart: Restart, reason: ExitReason) -> bool:
    """Is a child of this restart type restarted after an exit for ``reason``? Permanent: always; transient:
    after an abnormal exit; temporary: never."""
    return restart == Restart.PERMANENT or (restart == Restart.TRANSIENT and reason.is_abnormal)


def restart_group(strategy: Strategy, children: Iterable[C], failed: C) -> list[C]:
    """The children restarted together with ``failed`` (in start order, ``failed`` included): itself alone
    (one_for_one), every running child (one_for_all), or the running ones started after it (rest_for_one)."""
    if strategy == Strategy.ONE_FOR_ONE:
        return [failed]
    if strategy == Strategy.ONE_FOR_ALL:
        return [c for c in children if c is failed or c.running]
    group: list[C] = []
    for c in children:
        if c is failed or (group and c.running):
            group.append(c)
    return group


class Verdict(enum.Enum):
    """What a supervisor does about a child's exit."""

    DONE = "done"
    """Not restarted (its restart type says so); removed if listed in `ExitDecision.remove`."""
    RESTART = "restart"
    """Stop `ExitDecision.terminate`, remove `ExitDecision.remove`, then start `ExitDecision.restart`."""
    GIVE_UP = "give_up"
    """The child exceeded its own intensity: remove it and call its ``on_give_up``; no escalation."""
    ESCALATE = "escalate"
    """The supervisor exceeded its intensity: stop every child and exit abnormally (see `escalation_reason`)."""


@dataclass(frozen=True, slots=True)
class ExitDecision(Generic[C]):
    """The decision about one child's exit, and the intensities to keep from now on."""

    verdict: Verdict
    supervisor: Intensity
    """The supervisor's intensity, with this restart recorded if it counted."""
    child: Intensity | None
    """The child's own intensity, with this restart recorded if it counted."""
    restart: tuple[C, ...] = ()
    """Children to start again, in start order (the one that exited included)."""
    terminate: tuple[C, ...] = ()
    """Running siblings to stop first, in reverse start order."""
    remove: tuple[C, ...] = ()
    """Children to forget (a temporary sibling that was stopped, or the exited child that is not restarted)."""


def decide_exit(
    *,
    failed: C,
    reason: ExitReason,
    children: Iterable[C],
    strategy: Strategy,
    supervisor: Intensity,
    now: float,
) -> ExitDecision[C]:
    """Decide what to do when ``failed`` exited for ``reason`` at ``now``.

    ``children`` are the supervisor's children in start order (only read for one_for_all and rest_for_one).
    In order: the restart type (`restarts_after`); a process lost with its zygote is restarted alone, counted
    nowhere; then the child's own intensity, exceeded means `GIVE_UP`
    (not counted toward the supervisor's); then the supervisor's, exceeded means `ESCALATE`; else `RESTART`
    the strategy's group (`restart_group`): its running siblings are stopped, temporary ones removed.
    """
    if not restarts_after(failed.restart, reason):
        remove = (failed,) if failed.restart == Restart.TEMPORARY or failed.dynamic else ()
        return ExitDecision(Verdict.DONE, supervisor, failed.intensity, remove=remove)
    if reason.lost_with_zygote:  # not its failure: the zygote's own restarts are counted (and bounded) apart
        return ExitDecision(Verdict.RESTART, supervisor, failed.intensity, restart=(failed,))
    own = failed.intensity
    if own is not None:
        own, exceeded = own.add(now)
        if exceeded:
            return ExitDecision(Verdict.GIVE_UP, supervisor, own, remove=(failed,))
    supervisor, exceeded = supervisor.add(now)
    if exceeded:
        return ExitDecision(Verdict.ESCALATE, supervisor, own)
    group = restart_group(strategy, children, failed)
    if len(group) == 1:
        return ExitDecision(Verdict.RESTART, supervisor, own, restart=(failed,))
    others = [c for c in group if c is not failed]
    return ExitDecision(
        Verdict.RESTART,
        supervisor,
        own,
        restart=tuple(c for c in group if c is failed or c.restart != Restart.TEMPORARY),
        terminate=tuple(reversed(others)),
        remove=tuple(c for c in others if c.restart == Restart.TEMPORARY),
    )


def should_arm(
    *, strategy: Strategy, restart: Restart, child: Intensity | None, supervisor: Intensity, now: float
) -> bool:
    """May the zygote restart a process child speculatively (before the supervisor hears of its exit)? Only if
    an abnormal exit at ``now`` would restart it alone: one_for_one, not temporary, no intensity at its
    limit."""
    if strategy != Strategy.ONE_FOR_ONE or restart == Restart.TEMPORARY:
        return False
    if child is not None and child.at_limit(now):
        return False
    return not supervisor.at_limit(now)


def escalation_reason(supervisor_id: str, intensity: Intensity, child_id: str, reason: ExitReason) -> ExitReason:
    """The exit reason of a supervisor that gave up (`Verdict.ESCALATE`) after ``child_id`` exited for
    ``reason``: an exception ``supervisors.MaxRestartsExceeded``, which its parent sees as an abnormal exit."""
    return ExitReason(
        kind="exception",
        exc_type="supervisors.MaxRestartsExceeded",
        message=(
            f"supervisor {supervisor_id!r} exceeded {intensity.max_restarts} restarts in "
            f"{intensity.max_seconds}s; last exit: child {child_id!r}: {reason}"
        ),
        traceback=reason.traceback,
    )

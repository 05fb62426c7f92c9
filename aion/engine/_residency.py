"""Residency: which runs have a workflow process now, and which wait for one (the brief's section 8).

At most ``max_resident`` runs hold a process at once. A run that needs one beyond that either takes the place of
a *parked* run, which is evicted (its process is told to stop and its state is its history), or waits in line.
A parked run is one whose process is up and has reported on everything it was sent (its code is blocked), that
has no append on its way to the store, and that waits only on what may take long: a signal, a child, a timer
not due within `HORIZON` seconds, an activity scheduled more than `HORIZON` seconds ago. A run with a fresh
activity, a query unanswered or a timer about to fire keeps its process: it will most likely move on soon by
itself, and evicting it would only make it replay. While runs wait and none can be evicted, the residency looks
again every `RECHECK` seconds (an activity grows old, a timer that was near is now past): ``recheck`` is armed
for it.

Runs that already started (an arrival for an evicted run, a restart after recovery) get a process before runs
that have not started yet, so the work in flight is finished before new work is taken on. A slot is a run's from
the moment it is given a process until it closes or is evicted.

A parked run that has not been active for ``idle_after`` seconds (``Engine(evict_idle_after=...)``) is evicted
even when no run waits for its slot: a run waiting hours for a signal does not keep a process (3-7 MiB) for it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # at run time only their attributes are used: this module stays light for the CLI
    from aion.clock import Clock
    from aion.engine._runs import PendingActivity, Run

#: Runs holding a workflow process at once, by default (``Engine(max_resident=...)``): the zygote's cap on
#: idle recycled hosts, so that a burst of runs reuses processes instead of forking one per run beyond it.
DEFAULT_MAX_RESIDENT = 64
#: Seconds a parked run may stay inactive before it gives up its process with no other run needing it, by default
#: (``Engine(evict_idle_after=...)``).
DEFAULT_EVICT_IDLE_AFTER = 60.0

#: A run whose next timer fires within this many seconds, or whose activity was scheduled less than this many
#: seconds ago, is not evicted.
HORIZON = 1.0
#: While runs wait and none can be evicted, look again after this many seconds.
RECHECK = 0.25
#: How many of the least recently active runs are looked at for one eviction.
EVICTION_SCAN = 64


class Residency:
    """Hands out process slots to runs: ``spawn(run)`` starts a run's process, ``evict(run)`` stops one, and
    ``recheck_at(when)`` asks for a call of :meth:`recheck` at that time (epoch seconds of ``clock``)."""

    def __init__(
        self,
        max_resident: int,
        spawn: Callable[[Run], None],
        evict: Callable[[Run], None],
        recheck_at: Callable[[float], None],
        clock: Clock,
        *,
        idle_after: float | None = None,
        after_idle_evictions: Callable[[], float | None] | None = None,
    ) -> None:
        self.max_resident = max_resident
        #: Called once a sweep has evicted idle runs (the engine gives memory back then: ``MemoryReturner``); it
        #: returns None once done, or when (epoch seconds of ``clock``) to call it again.
        self._after_idle_evictions = after_idle_evictions
        #: Whether idle runs were evicted since ``after_idle_evictions`` last got done.
        self._return_owed = False
        self._clock = clock
        self._spawn = spawn
        self._evict = evict
        self._recheck_at = recheck_at
        self._idle_after = idle_after
        #: When `recheck` is armed for (epoch seconds), if it is.
        self._recheck_when: float | None = None
        #: Runs holding a slot, least recently active first, and when each was last active.
        self._resident: OrderedDict[str, Run] = OrderedDict()
        self._active_at: dict[str, float] = {}
        #: Runs waiting for a slot: those that had started first, then new runs, each in arrival order.
        self._resuming: OrderedDict[str, Run] = OrderedDict()
        self._starting: OrderedDict[str, Run] = OrderedDict()
        self.evictions = 0
        """How many runs were evicted (statistics)."""

    @property
    def resident(self) -> int:
        """How many runs hold a slot."""
        return len(self._resident)

    @property
    def waiting(self) -> int:
        """How many runs wait for a slot."""
        return len(self._resuming) + len(self._starting)

    def resident_runs(self) -> list[Run]:
        """The runs holding a slot."""
        return list(self._resident.values())

    def is_resident(self, run: Run) -> bool:
        """Whether ``run`` holds a slot (its process may still be starting)."""
        return self._resident.get(run.workflow_id) is run

    def want(self, run: Run, *, started: bool) -> None:
        """``run`` needs a process: give it a slot now, by evicting a parked run if need be, or queue it.
        ``started``: the run has run before (it resumes), so it goes ahead of new runs."""
        workflow_id = run.workflow_id
        if self.is_resident(run) or workflow_id in self._resuming or workflow_id in self._starting:
            return
        # With runs already waiting, nothing was evictable a moment ago: a run that parks since is evicted by
        # `settled` and one that ages by `recheck`, so the scan is not repeated for every newcomer.
        if len(self._resident) >= self.max_resident and (self.waiting or not self._evict_one()):
            (self._resuming if started else self._starting)[workflow_id] = run
            self._arm(self._clock.time() + RECHECK)
            return
        self._give(run)

    def recheck(self) -> None:
        """Evict parked runs for the runs that wait, as far as there are any, and parked runs idle for
        ``idle_after``; look again later if some still wait or will be idle long enough."""
        self._recheck_when = None
        while self.waiting and len(self._resident) >= self.max_resident and self._evict_one():
            self._admit()
        self._admit()
        now = self._clock.time()
        if self.waiting:
            self._arm(now + RECHECK)
        self._evict_idle(now)

    def touch(self, run: Run) -> None:
        """``run`` was just active: it is the last one to be evicted."""
        workflow_id = run.workflow_id
        if workflow_id in self._resident:
            self._resident.move_to_end(workflow_id)
            self._active_at[workflow_id] = self._clock.time()

    def settled(self, run: Run) -> None:
        """``run`` reported on what it was sent, or its last append is in: if it is now parked and runs wait for a
        slot, it makes room."""
        if self.waiting and self.is_resident(run) and _parked(run, self._clock.time()):
            self._evict_resident(run)
            self._admit()

    def release(self, run: Run) -> None:
        """``run`` needs no process any more (it closed, or was evicted): its slot goes to the next in line."""
        workflow_id = run.workflow_id
        # Keyed by workflow: the entry may be the run's successor (continue-as-new), which wants its own slot.
        for waiting in (self._resuming, self._starting):
            if waiting.get(workflow_id) is run:
                del waiting[workflow_id]
        if self._resident.get(workflow_id) is run:
            del self._resident[workflow_id]
            self._active_at.pop(workflow_id, None)
            self._admit()

    def _arm(self, at: float) -> None:
        """Have `recheck` called at ``at`` (or earlier, if it is armed for earlier already)."""
        if self._recheck_when is None or at < self._recheck_when:
            self._recheck_when = at
            self._recheck_at(at)

    def _give(self, run: Run) -> None:
        workflow_id = run.workflow_id
        self._resident[workflow_id] = run
        now = self._clock.time()
        self._active_at[workflow_id] = now
        if self._idle_after is not None:
            self._arm(now + self._idle_after)
        self._spawn(run)

    def _evict_idle(self, now: float) -> None:
        """Evict the parked runs not active for ``idle_after`` (the least recently active first); arm `recheck`
        for when the next one will have been idle that long."""
        if self._idle_after is None:
            return
        limit = now - self._idle_after
        skipped = False  # an idle run that is not parked (a timer about to fire, say): look again soon
        next_at: float | None = None
        evictions = self.evictions
        for scanned, run in enumerate(list(self._resident.values())):
            active_at = self._active_at.get(run.workflow_id, now)
            if active_at > limit:  # it and every run after it were active more recently
                next_at = active_at + self._idle_after
                break
            if scanned >= EVICTION_SCAN:
                skipped = True
                break
            if _parked(run, now):
                self._evict_resident(run)
            else:
                skipped = True
        self._admit()
        self._return_owed |= self.evictions > evictions
        if self._return_owed and self._after_idle_evictions is not None:
            again_at = self._after_idle_evictions()
            self._return_owed = again_at is not None
            if again_at is not None:
                self._arm(again_at)
        if skipped:
            self._arm(now + RECHECK)
        elif next_at is not None:
            self._arm(next_at)

    def _admit(self) -> None:
        while len(self._resident) < self.max_resident and (self._resuming or self._starting):
            queue = self._resuming or self._starting
            _, run = queue.popitem(last=False)
            self._give(run)
            if not queue:
                self._drained(queue)

    def _drained(self, queue: OrderedDict[str, Run]) -> None:
        """A queue emptied: give it a new table (a dict never shrinks, and a burst of 100,000 starts leaves
        one of 100,000 entries)."""
        if queue is self._starting:
            self._starting = OrderedDict()
        else:
            self._resuming = OrderedDict()

    def _evict_one(self) -> bool:
        """Evict the least recently active parked run; False if none of the oldest is parked."""
        now = self._clock.time()
        for scanned, run in enumerate(self._resident.values()):
            if scanned >= EVICTION_SCAN:
                break
            if _parked(run, now):
                self._evict_resident(run)
                return True
        return False

    def _evict_resident(self, run: Run) -> None:
        del self._resident[run.workflow_id]
        self._active_at.pop(run.workflow_id, None)
        self.evictions += 1
        self._evict(run)


def _parked(run: Run, now: float) -> bool:
    """Whether ``run`` waits only on what may take long (see the module), with its process up."""
    link, state = run.link, run.state
    fires, activities = state.waiting_on()
    return (
        link.channel is not None
        and link.acked >= link.sent
        and link.delivered >= state.head  # nothing recorded for it is still on its way (an activity's result, say)
        and not state.closing
        and not link.querying
        and all(fire_at - now > HORIZON for fire_at in fires)
        and all(_long_running(activity, now) for activity in activities)
    )


def _long_running(activity: PendingActivity, now: float) -> bool:
    """Whether ``activity`` was scheduled long enough ago, and is not about to be retried, that the run waiting
    on it may as well give up its process."""
    scheduled_at, retry_at = activity.scheduled_at, activity.next_attempt_at
    return scheduled_at is not None and now - scheduled_at > HORIZON and (retry_at is None or retry_at - now > HORIZON)

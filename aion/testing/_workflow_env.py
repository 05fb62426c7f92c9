"""``WorkflowEnvironment``: a real engine (real processes, real replay, a real store in a temporary directory) on
a virtual clock that skips ahead when every run waits only on time.

Time moves only when the environment moves it. While a test waits on ``handle.result()``, the environment looks
whether the engine has settled (every append recorded, every run's process has answered what it was sent, no
activity attempt queued or running) and, if so, moves the clock to the next due timer at once: a 30-day sleep, a
1-hour signal timeout, a 10-minute retry backoff or a 1-day workflow timeout take no real time. ``env.sleep(d)``
moves the clock by hand (through every timer due on the way, in order, letting the runs react to each), even while
activities run, so an activity's timeout can be tested too.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aion._definitions import activity_type_name, define_activity
from aion._durations import Duration, optional_seconds, to_seconds
from aion.clock import SYSTEM_CLOCK, ManualClock
from aion.engine import Engine, WorkflowHandle
from aion.engine._messages import Quiescence
from aion.errors import InvalidArgumentError, ResultTimeoutError
from aion.status import WorkflowStatus
from aion.store import RunInfo

#: Real time: the caller's timeouts and the default start of the virtual clock.
_REAL = SYSTEM_CLOCK
#: How long (real seconds) one look for the run's result lasts before the environment looks at the engine again.
_POLL = 0.005
#: How long (real seconds) the environment waits for the engine to settle between two moves of ``sleep``.
_SETTLE_TIMEOUT = 60.0

#: Activities to register: functions, or a map from a real activity to the fake that stands in for it.
Activities = Iterable[Callable[..., Any]] | Mapping[Callable[..., Any] | str, Callable[..., Any]]


class WorkflowEnvironment:
    """A test engine on a virtual clock. Use it as a context manager::

        with WorkflowEnvironment(workflows=[checkout], activities={charge: fake_charge}) as env:
            handle = env.start_workflow(checkout, {"id": 1})
            handle.signal("approve", "alice")
            assert handle.result() == ...

    ``activities`` is a list of activity functions, or a map from an activity (or its type name) to a fake that
    runs in its place. ``start_time`` is the clock's start (default: now); ``time_skipping=False`` keeps the
    clock still unless :meth:`sleep` moves it. Other keyword options go to :class:`aion.Engine`
    (``activity_workers`` defaults to 2).
    """

    def __init__(
        self,
        workflows: Iterable[Callable[..., Any]] = (),
        activities: Activities = (),
        *,
        time_skipping: bool = True,
        start_time: datetime | None = None,
        data_dir: str | Path | None = None,
        **engine_options: Any,
    ) -> None:
        start = _REAL.time() if start_time is None else _epoch(start_time)
        self.clock = ManualClock(start)
        self.time_skipping = time_skipping
        self._workflows = list(workflows)
        self._activities = _activities(activities)
        self._data_dir = None if data_dir is None else Path(data_dir)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        engine_options.setdefault("activity_workers", 2)
        # Idle runs keep their processes: the virtual clock's leaps would otherwise evict every waiting run.
        engine_options.setdefault("evict_idle_after", None)
        self._engine_options = engine_options
        self._engine: Engine | None = None
        self._auto = True

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> WorkflowEnvironment:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the engine (in a new temporary directory unless ``data_dir`` was given)."""
        if self._engine is not None:
            return
        data_dir = self._data_dir
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aion-test-")
            data_dir = Path(self._tmp.name) / "data"
        engine = Engine(data_dir, self._workflows, self._activities, clock=self.clock, **self._engine_options)
        engine.start()
        self._engine = engine

    def stop(self) -> None:
        """Stop the engine and remove its temporary directory."""
        engine, self._engine = self._engine, None
        try:
            if engine is not None:
                engine.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    @property
    def engine(self) -> Engine:
        """The engine under test (its whole API is available)."""
        if self._engine is None:
            raise InvalidArgumentError("the WorkflowEnvironment is not started: use it as a context manager")
        return self._engine

    # -- the client API -------------------------------------------------------------------------------------

    def start_workflow(self, workflow: str | Callable[..., Any], *args: Any, **options: Any) -> WorkflowHandle[Any]:
        """``Engine.start_workflow``, with a handle whose ``result()`` skips time."""
        return self._handle(self.engine.start_workflow(workflow, *args, **options))

    def execute_workflow(self, workflow: str | Callable[..., Any], *args: Any, **options: Any) -> Any:
        """Start ``workflow`` and return its result (skipping time while it runs)."""
        return self.start_workflow(workflow, *args, **options).result()

    def signal_with_start(self, workflow: str | Callable[..., Any], *args: Any, **options: Any) -> WorkflowHandle[Any]:
        """``Engine.signal_with_start``, with a handle whose ``result()`` skips time."""
        return self._handle(self.engine.signal_with_start(workflow, *args, **options))

    def get_workflow(self, workflow_id: str, run_id: str | None = None) -> WorkflowHandle[Any]:
        """``Engine.get_workflow``, with a handle whose ``result()`` skips time."""
        return self._handle(self.engine.get_workflow(workflow_id, run_id))

    def list_workflows(
        self,
        *,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | Callable[..., Any] | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """``Engine.list_workflows``."""
        return self.engine.list_workflows(status=status, workflow_type=workflow_type, limit=limit)

    # -- time -----------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time."""
        return self.clock.now()

    def sleep(self, duration: Duration) -> None:
        """Move virtual time forward by ``duration``, through every timer due on the way, in order: at each, the
        engine settles (the runs react) before time moves on. Activities keep running in real time meanwhile."""
        seconds = to_seconds(duration, "duration")
        target = self.clock.time() + seconds
        while True:
            state = self._settled()
            if state.next_due is None or state.next_due > target:
                break
            self.clock.set(max(state.next_due, self.clock.time()))
        self.clock.set(target)
        self._settled()

    @contextmanager
    def auto_time_skipping_disabled(self) -> Iterator[None]:
        """Within the block, waiting on a result does not move the clock."""
        previous, self._auto = self._auto, False
        try:
            yield
        finally:
            self._auto = previous

    def skip_if_idle(self) -> bool:
        """Move the clock to the next due timer if the engine has settled and no activity runs; whether it moved."""
        state = self._quiescence()
        if not (state.settled and not state.activities_busy and state.next_due is not None):
            return False
        if state.next_due <= self.clock.time():
            return False  # due already: the timer thread is about to fire it
        self.clock.set(state.next_due)
        return True

    # -- internals ------------------------------------------------------------------------------------------

    def _handle(self, handle: WorkflowHandle[Any]) -> WorkflowHandle[Any]:
        return TimeSkippingHandle(self, handle.workflow_id, handle.run_id)

    def _quiescence(self) -> Quiescence:
        state: Quiescence = self.engine.quiescence()  # the core's and the schedule service's
        return state

    def _settled(self) -> Quiescence:
        deadline = _REAL.monotonic() + _SETTLE_TIMEOUT
        while True:
            state = self._quiescence()
            if state.settled:
                return state
            if _REAL.monotonic() > deadline:
                raise ResultTimeoutError(f"the engine did not settle within {_SETTLE_TIMEOUT:g} s of real time")
            time.sleep(_POLL)

    def skips(self) -> bool:
        """Whether waiting on a result moves the clock now."""
        return self.time_skipping and self._auto


class TimeSkippingHandle(WorkflowHandle[Any]):
    """A workflow handle whose ``result()`` skips virtual time while it waits (see :class:`WorkflowEnvironment`)."""

    def __init__(self, env: WorkflowEnvironment, workflow_id: str, run_id: str) -> None:
        super().__init__(env.engine, workflow_id, run_id)
        self._env = env

    def result(self, timeout: Duration | None = None) -> Any:
        """Wait for the run's result, moving virtual time to each next timer whenever only time is awaited.
        ``timeout`` is in real seconds (``ResultTimeoutError`` past it)."""
        env = self._env
        if not env.skips():
            return super().result(timeout)
        seconds = optional_seconds(timeout, "timeout")
        deadline = None if seconds is None else _REAL.monotonic() + seconds
        while True:
            try:
                return super().result(timeout=_POLL)
            except ResultTimeoutError:
                if deadline is not None and _REAL.monotonic() > deadline:
                    raise ResultTimeoutError(
                        f"workflow {self.workflow_id!r} did not close within {seconds:g} s of real time"
                    ) from None
            env.skip_if_idle()


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise InvalidArgumentError("start_time must be an aware datetime (with a tzinfo)")
    return moment.timestamp()


def _activities(activities: Activities) -> list[Callable[..., Any]]:
    """The functions to register: fakes take the type name of the activity they replace."""
    if not isinstance(activities, Mapping):
        return list(activities)
    registered = []
    for real, fake in activities.items():
        define_activity(fake, activity_type_name(real))
        registered.append(fake)
    return registered


__all__ = ["TimeSkippingHandle", "WorkflowEnvironment"]

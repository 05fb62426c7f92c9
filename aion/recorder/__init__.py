"""The recorder: the one writer of the event store, committing appends in groups.

Every history write of the engine goes through one :class:`Recorder` actor (invariant 1, *one writer*).
Callers use a :class:`RecorderHandle`, which is thread-safe; each ``append`` returns a ``pykka.Future``
resolved only after the write transaction holding it has committed durably (LMDB ``sync``: fsync), or resolved
with the error that refused that one append (``SequenceConflictError``, ``PayloadError``, ...)::

    handle = start_recorder(store)
    stamped = handle.append("order-1", [WorkflowStarted(...)], expected_head=0).get()
    handle.stop()

Group commit, and why it is built this way
------------------------------------------
An fsync costs far more than writing a few small events, so the recorder commits every append waiting at that
moment in one write transaction and one fsync. Using only public pykka API:

* the handle puts ``(request, future)`` into a ``queue.SimpleQueue`` shared with the actor, and ``tell``s the
  actor a small ``_Flush`` message *only if no flush is already scheduled* (a flag guarded by a lock);
* on a ``_Flush`` the actor clears the flag, then drains the whole queue without blocking into one
  ``EventStore.append_batch`` (capped at ``max_batch`` requests per transaction), commits, and resolves each
  future with its own slot of the result.

While a transaction commits, new appends pile up in the queue and the next flush takes them all: the batch
size adapts to the load with no timer and no added latency when idle. Passing the requests through pykka's
own inbox (one message per append) would also work, but pykka handles one message per ``on_receive`` and
gives an actor no way to peek at its inbox, so it could not batch; the side queue plus a coalesced wake-up
message keeps the actor the single writer and costs one queue put per append. An ``atomic`` item (an
``append_batch(atomic=True)``: continue-as-new, signal-with-start; an append with a ``companion``: a schedule's
fire with its run's start) is committed in the same transaction as the rest of the drain, as an *atomic group*
of the store's batch (``append_batch(..., groups=...)``): planned as one unit, so a refused request takes its
group back (nothing of it is written, each of its slots holds the refusal) and nothing else. A hundred schedules
firing at once are thus one fsync, not a hundred. On a store that takes no groups, each atomic item is a
transaction of its own. Order between queued items is kept.

Resolving after the next write
------------------------------
The recorder's thread holds the GIL for its Python work, and py-lmdb releases it around *every* call (each
``put``, the ``begin`` and the ``commit``). If the futures of a batch were resolved right after its commit, the
woken writers would be runnable while the actor writes the next batch, and each of its ``put`` calls would hand
the GIL to one of them and wait for it back: a context switch or two per put. So the futures of a committed batch
are resolved from the store's ``before_commit`` hook of the *next* batch, after its writes and just before its
commit: the writers then run while the actor waits on the fsync, and they are asleep while it writes. This only
delays the acknowledgement by the next batch's write phase, never before durability: a batch's futures are
resolved after its own commit returned. When the queue is empty they are resolved at once.

Holding deferrable appends
--------------------------
Greedy group commit starts the next transaction as soon as the last one is committed, with whatever is queued. A
caller that waits for each append (a thread starting workflows one after another) then finds a transaction in
flight, made of the engine's own steps, and waits for it and then for its own: two commits per call, and a commit
per step besides. So an append says whether a caller waits on it: *prompt* (the default) or ``deferrable`` (the
engine core's own steps: an activity's, a timer's, a completion nobody waits for). While prompt appends come in a
steady stream (their smoothed gap, and the time since the last one, under ``STREAM_WINDOW`` holds: one and a
half), the actor holds the deferrable ones queued, for at most ``hold`` (``DEFAULT_HOLD``, 2 ms), until the next
prompt one: that one finds the actor idle, its caller waits for one commit, and the held appends share it.
Anything else ends a hold at once: a prompt append, ``expedite()`` (the engine calls it when a ``result()`` waiter
arrives, whose run's completion may be held) and ``stop()``. With no stream, nothing is held: the batch adapts to
the load as before, with no timer. The cost is at most ``hold`` of latency for a run's own step while callers keep
the recorder busy, and a run's held steps advance at most once per prompt append: the window is narrow so that a
caller starting a run every few milliseconds (which a commit per step does not overload) does not pace the runs
it started. ``hold=0`` turns it off (the engine's ``Engine(commit_hold=...)``). ``stats().holds`` counts the holds.

Two more costs are kept off the actor's critical path: each ``append`` encodes its events' bodies (all but
``seq`` and ``recorded_at``, see ``aion._codec.encode_event_body``) in the appending thread, and the futures are
:class:`~aion._futures.OneShotFuture` (a flag, and a plain lock only if someone waits) instead of
``pykka.ThreadingFuture`` (a ``threading.Condition`` each).

The package: ``_shared`` (the queued items, the shared state, the sinks), ``_actor`` (the group-commit loop),
``_handle`` (the thread-safe API and :func:`start_recorder`).

An actor must not block on a future: it appends with ``append_to(sink, token, ...)`` instead, and the recorder
hands the sink the outcomes of that actor's appends, one call per committed batch (the engine core turns that
call into one message to itself). Sinks run on the recorder's thread, possibly inside the store's write
transaction: they must be quick and must not write to the store; one that raises is logged.

``stop()`` refuses new appends, commits everything already queued, then stops the actor."""

from aion.recorder._actor import Recorder
from aion.recorder._handle import RecorderHandle, start_recorder
from aion.recorder._shared import DEFAULT_HOLD, DEFAULT_MAX_BATCH, CommitSink, Committed, RecorderStats

__all__ = [
    "DEFAULT_HOLD",
    "DEFAULT_MAX_BATCH",
    "CommitSink",
    "Committed",
    "Recorder",
    "RecorderHandle",
    "RecorderStats",
    "start_recorder",
]

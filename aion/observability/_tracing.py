"""OpenTelemetry spans of workflows, built in the engine process from what it records (extra ``aion[otel]``).

Workflow processes and activity workers are forked children: a span they made would need an exporter of their
own. The engine sees every step anyway, so it makes the spans itself, on the core's thread, with the times of
the recorded events:

- ``workflow.start <type>``: around ``Engine.start_workflow`` in the caller's thread (a child of the caller's
  current span). Its context is recorded in ``WorkflowStarted.trace_context`` (W3C ``traceparent``).
- ``workflow.run <type>``: from the run's ``WorkflowStarted`` to its terminal event; its parent is the context
  recorded in ``WorkflowStarted.trace_context``. A child workflow's ``WorkflowStarted`` records its parent run's
  span, so a child's run span sits under its parent's; a continue-as-new's next run keeps the recorded context.
- ``activity <type>``: one per attempt, from its dispatch to its recorded outcome, under the run's span. Its
  context goes to the activity worker with the task (``traceparent``), where it is the current context while
  the activity runs.

Because the parent context is recorded, a run resumed after an engine restart gets a run span in the same trace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aion import events as ev

_PROPAGATOR = TraceContextTextMapPropagator()

#: A recorded trace context: the W3C ``traceparent`` (and ``tracestate``) headers.
Carrier = dict[str, str]


def _ns(when: datetime | float) -> int:
    seconds = when.timestamp() if isinstance(when, datetime) else when
    return int(seconds * 1_000_000_000)


def _carrier_of(span: Span) -> Carrier:
    carrier: Carrier = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _context_of(carrier: Carrier | None) -> Any:
    return _PROPAGATOR.extract(carrier or {}, context=otel_context.Context())


class Tracing:
    """The open spans of one engine: a span per open run and per running activity attempt."""

    def __init__(self, tracer_provider: Any) -> None:
        self._tracer = tracer_provider.get_tracer("aion")
        self._runs: dict[tuple[str, str], Span] = {}
        self._attempts: dict[tuple[str, int], Span] = {}

    # -- in the caller's thread -----------------------------------------------------------------------------

    def start_span(self, workflow_type: str, workflow_id: str) -> Span:
        """The ``workflow.start`` span of an API start (end it once the start returns)."""
        span: Span = self._tracer.start_span(
            f"workflow.start {workflow_type}",
            kind=SpanKind.CLIENT,
            attributes={"aion.workflow_type": workflow_type, "aion.workflow_id": workflow_id},
        )
        return span

    @staticmethod
    def carrier(span: Span) -> Carrier:
        """The context of ``span``, to record."""
        return _carrier_of(span)

    # -- in the core's thread -------------------------------------------------------------------------------

    def child_carrier(self, parent_workflow_id: str, parent_run_id: str) -> Carrier | None:
        """The context a child workflow's start records: its parent run's span."""
        span = self._runs.get((parent_workflow_id, parent_run_id))
        return None if span is None else _carrier_of(span)

    def run_span(self, workflow_id: str, run_id: str, started: ev.WorkflowStarted | None) -> Span | None:
        """The run's span, opened at its recorded start if this engine has none yet (a new or resumed run)."""
        span = self._runs.get((workflow_id, run_id))
        if span is None and started is not None:
            span = self._tracer.start_span(
                f"workflow.run {started.workflow_type}",
                context=_context_of(started.trace_context),
                kind=SpanKind.INTERNAL,
                start_time=_ns(started.recorded_at),
                attributes={
                    "aion.workflow_type": started.workflow_type,
                    "aion.workflow_id": workflow_id,
                    "aion.run_id": run_id,
                },
            )
            self._runs[(workflow_id, run_id)] = span
        return span

    def attempt_started(
        self,
        workflow_id: str,
        run_id: str,
        started: ev.WorkflowStarted | None,
        activity: tuple[int, str, int],
        now: float,
    ) -> Carrier | None:
        """An attempt is dispatched to a worker: open its span now; returns its context for the worker."""
        activity_id, activity_type, attempt = activity
        parent = self.run_span(workflow_id, run_id, started)
        if parent is None:
            return None
        key = (workflow_id, activity_id)
        previous = self._attempts.pop(key, None)
        if previous is not None:
            previous.end(end_time=_ns(now))
        span = self._tracer.start_span(
            f"activity {activity_type}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            start_time=_ns(now),
            attributes={
                "aion.workflow_id": workflow_id,
                "aion.run_id": run_id,
                "aion.activity_id": activity_id,
                "aion.activity_type": activity_type,
                "aion.attempt": attempt,
            },
        )
        self._attempts[key] = span
        return _carrier_of(span)

    def attempt_ended(self, workflow_id: str, activity_id: int, event: ev.Event, error: str | None) -> None:
        """An attempt's outcome is recorded: close its span at the record's time."""
        span = self._attempts.pop((workflow_id, activity_id), None)
        if span is None:
            return
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=_ns(event.recorded_at))

    def run_closed(self, workflow_id: str, run_id: str, terminal: ev.Event, error: str | None) -> None:
        """A run's terminal event is recorded: close its span (and any attempt span it left open)."""
        span = self._runs.pop((workflow_id, run_id), None)
        end = _ns(terminal.recorded_at)
        for key in [key for key in self._attempts if key[0] == workflow_id]:
            self._attempts.pop(key).end(end_time=end)
        if span is None:
            return
        span.set_attribute("aion.outcome", type(terminal).__name__)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end)


def attach(carrier: Carrier | None) -> Any:
    """Make ``carrier`` the current context (in an activity worker); returns the token for :func:`detach`."""
    return otel_context.attach(_context_of(carrier))


def detach(token: Any) -> None:
    """Undo :func:`attach`."""
    otel_context.detach(token)

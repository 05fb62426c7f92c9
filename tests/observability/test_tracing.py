"""OpenTelemetry spans of a real engine exported to an in-memory exporter: one tree for a workflow with two
activities and a child, the attempt's context current in the activity worker, and the same trace for a run
resumed by a restarted engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import aion
from tests.helpers import wait_until
from tests.observability import flows
from tests.observability.test_metrics import ACTIVITIES, WORKFLOWS


def tracer() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider exporting every ended span to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def ended(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """Every finished span, once one called ``name`` is among them (else nothing)."""
    spans = list(exporter.get_finished_spans())
    return spans if named(spans, name) else []


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


@pytest.mark.timeout(120)
def test_a_workflow_with_two_activities_and_a_child_is_one_tree(tmp_path: Path) -> None:
    provider, exporter = tracer()
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, activity_workers=1, warm_pool=1
    ) as engine:
        child_result, worker_span = engine.start_workflow(flows.tree, 3, workflow_id="traced").result(timeout=60)
        assert child_result == 12
        spans = wait_until(lambda: ended(exporter, "workflow.run tree"))

    assert len({span.context.trace_id for span in spans if span.context is not None}) == 1  # one trace
    (start,) = named(spans, "workflow.start tree")
    (run,) = named(spans, "workflow.run tree")
    (child_run,) = named(spans, "workflow.run leaf")
    doubles = named(spans, "activity double")
    (spanned,) = named(spans, "activity current_span_id")
    assert start.parent is None
    assert parent_of(run) == span_id(start)
    assert parent_of(child_run) == span_id(run)
    assert parent_of(spanned) == span_id(run)
    assert sorted(parent_of(span) or 0 for span in doubles) == sorted([span_id(run), span_id(child_run)])
    # The activity worker ran under its attempt's span.
    assert worker_span == format(span_id(spanned), "016x")
    # Times nest: the run spans its activities and its child.
    for inner in [*doubles, spanned, child_run]:
        assert run.start_time is not None and run.end_time is not None
        assert inner.start_time is not None and inner.end_time is not None
        assert run.start_time <= inner.start_time <= inner.end_time <= run.end_time
    assert run.attributes is not None and run.attributes["aion.workflow_id"] == "traced"
    assert spanned.attributes is not None and spanned.attributes["aion.attempt"] == 1


@pytest.mark.timeout(120)
def test_a_failed_attempt_and_run_have_error_status(tmp_path: Path) -> None:
    provider, exporter = tracer()
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, activity_workers=1, warm_pool=1
    ) as engine:
        engine.start_workflow(flows.retrying, 1).result(timeout=60)
        with pytest.raises(aion.WorkflowFailedError):
            engine.start_workflow(flows.failing, "boom").result(timeout=60)
        spans = wait_until(lambda: ended(exporter, "workflow.run failing"))
    attempts = sorted(named(spans, "activity flaky"), key=lambda span: span.attributes["aion.attempt"])  # type: ignore[index]
    assert [span.status.is_ok for span in attempts] == [False, True]
    (failed,) = named(spans, "workflow.run failing")
    assert not failed.status.is_ok


@pytest.mark.timeout(120)
def test_a_run_resumed_by_a_new_engine_stays_in_its_trace(tmp_path: Path) -> None:
    provider, exporter = tracer()
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, activity_workers=1, warm_pool=1
    ) as engine:
        engine.start_workflow(flows.waiting, workflow_id="resumed")
    (start,) = named(exporter.get_finished_spans(), "workflow.start waiting")
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, activity_workers=1, warm_pool=1
    ) as engine:
        handle = engine.get_workflow("resumed")
        handle.signal("go", "again")
        assert handle.result(timeout=60) == "again"
        (run,) = wait_until(lambda: named(exporter.get_finished_spans(), "workflow.run waiting"))
    assert run.context is not None and start.context is not None
    assert run.context.trace_id == start.context.trace_id
    assert parent_of(run) == span_id(start)


@pytest.mark.timeout(120)
def test_a_resumed_run_evicted_before_it_closes_keeps_its_span(tmp_path: Path) -> None:
    # The engine sheds an evicted run's WorkflowStarted: the run's span must be opened from it before then.
    provider, exporter = tracer()
    with aion.Engine(tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, warm_pool=1) as engine:
        engine.start_workflow(flows.waiting, workflow_id="evicted")
    (start,) = named(exporter.get_finished_spans(), "workflow.start waiting")
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, tracer_provider=provider, warm_pool=1, evict_idle_after=0.3
    ) as engine:
        wait_until(lambda: engine.residency()["evictions"] == 1)
        handle = engine.get_workflow("evicted")
        handle.signal("go", "late")
        assert handle.result(timeout=60) == "late"
        (run,) = wait_until(lambda: named(exporter.get_finished_spans(), "workflow.run waiting"))
        recorded = engine.store.read_run("evicted")[0]
    assert run.context is not None and start.context is not None
    assert run.context.trace_id == start.context.trace_id
    assert parent_of(run) == span_id(start)
    assert run.start_time == int(recorded.recorded_at.timestamp() * 1e9)


@pytest.mark.timeout(60)
def test_tracing_is_off_unless_configured(tmp_path: Path) -> None:
    with aion.Engine(tmp_path / "data", WORKFLOWS, ACTIVITIES, activity_workers=1, warm_pool=1) as engine:
        engine.start_workflow(flows.leaf, 1, workflow_id="plain").result(timeout=30)
        started = engine.store.read_run("plain")[0]
    assert isinstance(started, aion.events.WorkflowStarted)
    assert started.trace_context is None

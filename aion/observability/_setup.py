"""What an engine turns on for observability: the observer its core tells, the metrics and their ``/metrics``
server, the tracer; built from ``Engine(metrics=..., tracer_provider=...)``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from aion.clock import Clock
from aion.engine._options import StartOptions
from aion.errors import InvalidArgumentError
from aion.observability._metrics import Metrics, MetricsServer, counter, gauge, parse_address
from aion.observability._observer import Observer

#: ``Engine(metrics=...)``: ``"HOST:PORT"`` to serve ``/metrics`` there, True to count without serving (read
#: ``Engine.metrics_registry``), None or False for none.
MetricsOption = str | bool | None


class Telemetry:
    """The observability parts of one engine (each off unless asked for)."""

    def __init__(self, metrics: MetricsOption, tracer_provider: Any, clock: Clock) -> None:
        if isinstance(metrics, str):
            parse_address(metrics)  # a malformed address fails the Engine's construction, not its start
        elif metrics is not None and not isinstance(metrics, bool):
            raise InvalidArgumentError(f"metrics must be 'HOST:PORT', True, False or None, got {metrics!r}")
        self._address = metrics if isinstance(metrics, str) else None
        self.metrics = Metrics() if metrics else None
        tracing = None
        if tracer_provider is not None:
            try:
                from aion.observability._tracing import Tracing  # noqa: PLC0415 - the optional extra aion[otel]
            except ImportError as error:
                raise InvalidArgumentError("tracer_provider needs OpenTelemetry: pip install 'aion[otel]'") from error
            tracing = Tracing(tracer_provider)
        self.tracing = tracing
        self.observer = Observer(self.metrics, tracing)
        self._clock = clock
        self._server: MetricsServer | None = None

    def commit_observer(self) -> tuple[Callable[[], float], Callable[[float, int], None]] | None:
        """What the recorder tells each commit (None without metrics)."""
        metrics = self.metrics
        if metrics is None:
            return None
        seconds, size = metrics.commit_seconds, metrics.commit_batch

        def committed(duration: float, requests: int) -> None:
            seconds.observe(duration)
            size.observe(float(requests))

        return self._clock.monotonic, committed

    def control_request(self, op: str) -> None:
        """Count a control-socket request."""
        if self.metrics is not None:
            self.metrics.control_request(op)

    def started(
        self,
        data_dir: Path,
        recovered: tuple[int, int, int],
        schedules: int,
        sources: Iterable[Callable[[], Iterable[Metric]]],
    ) -> None:
        """The engine is up: log it (``recovered``: runs resumed, blocked, paused), and serve ``/metrics`` (with
        ``sources`` read at each scrape)."""
        if self.metrics is not None:
            self.metrics.sources[:] = list(sources)
            if self._address is not None:
                self._server = MetricsServer(self.metrics, self._address)
        Observer.engine_started(data_dir, *recovered, schedules=schedules)

    def stopped(self, data_dir: Path) -> None:
        """The engine stopped: stop serving ``/metrics``."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        Observer.engine_stopped(data_dir)

    @property
    def address(self) -> tuple[str, int] | None:
        """Where ``/metrics`` is served (the port bound when 0 was asked), while it is."""
        return None if self._server is None else self._server.address

    @contextlib.contextmanager
    def starting(self, workflow_type: str, workflow_id: str, options: StartOptions) -> Iterator[StartOptions]:
        """Around an API start: the ``workflow.start`` span, whose context the options carry to the run."""
        tracing = self.tracing
        if tracing is None:
            yield options
            return
        span = tracing.start_span(workflow_type, workflow_id)
        try:
            yield dataclasses.replace(options, trace_context=tracing.carrier(span))
        finally:
            span.end()


def residency_source(figures: Callable[[], dict[str, int]]) -> Callable[[], Iterable[Metric]]:
    """The residency gauges and the evictions counter, read from the core at scrape time."""

    def collect() -> Iterable[Metric]:
        try:
            now = figures()
        except Exception:
            return []
        return [
            gauge("aion_resident_runs", "Runs holding a workflow process now.", now["resident"]),
            gauge("aion_waiting_runs", "Runs waiting for a workflow process slot.", now["waiting"]),
            gauge("aion_max_resident_runs", "The residency bound (max_resident).", now["max_resident"]),
            counter("aion_evictions", "Runs evicted from their process since the engine started.", now["evictions"]),
        ]

    return collect


def recorder_source(stats: Callable[[], Any]) -> Callable[[], Iterable[Metric]]:
    """The recorder's own counters (every writer's appends, not only the core's), read at scrape time."""

    def collect() -> Iterable[Metric]:
        now = stats()
        return [
            counter("aion_recorder_fsyncs", "Write transactions committed, each one fsync.", now.batches),
            counter("aion_recorder_appends", "Append requests the recorder handled.", now.appends),
            counter("aion_recorder_events", "Events the recorder committed.", now.events),
            counter("aion_recorder_errors", "Append requests the recorder refused or failed.", now.errors),
        ]

    return collect

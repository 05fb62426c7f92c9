"""The engine's Prometheus metrics: counted with plain ints, exported by a custom collector.

Every metric is counted in the one thread that sees what it counts (the core's thread for recorded events and
process exits, the recorder's for commits; the control server's threads share a lock), as a dict of label
tuples to ints or bucket lists: no lock and no client object on the hot path. A scrape copies those dicts
(an atomic copy under the GIL) and builds the metric families (:class:`_Collector`). Each engine has its own
``CollectorRegistry``, so several engines in one process do not clash. Label values are workflow and activity
type names, supervisor names and exit kinds: never ids.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from aion.errors import InvalidArgumentError

#: Latency buckets (seconds): from a millisecond to ten minutes.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
)  # fmt: skip
#: Workflow end-to-end buckets (seconds): from 10 ms to a day.
WORKFLOW_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0)
#: Commit batch size buckets (appends per transaction).
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


class Counter:
    """A counter family: label values → count."""

    __slots__ = ("doc", "labels", "name", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.doc = doc
        self.labels = labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...] = (), amount: float = 1) -> None:
        """Add ``amount`` to the series ``key`` (call from one thread per series)."""
        values = self.values
        values[key] = values.get(key, 0) + amount

    def family(self) -> Metric:
        """The exported family (``_total`` is added by the client)."""
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in dict(self.values).items():
            family.add_metric(list(key), value)
        return family


class Histogram:
    """A histogram family: label values → per-bucket counts (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("buckets", "doc", "labels", "name", "series")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.name = name
        self.doc = doc
        self.labels = labels
        self.buckets = buckets
        #: key → [count in bucket 0, ..., count above the last bucket, sum]
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, key: tuple[str, ...] = ()) -> None:
        """Record one observation in the series ``key`` (call from one thread per series)."""
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.buckets) + 2)
        series[bisect.bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def family(self) -> Metric:
        """The exported family, with cumulative buckets."""
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        bounds = [*(repr(float(b)) for b in self.buckets), "+Inf"]
        for key, series in dict(self.series).items():
            counts = list(series)
            cumulative = 0.0
            buckets = []
            for bound, count in zip(bounds, counts[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(key), buckets, counts[-1])
        return family


#: Reads figures kept elsewhere (residency, the recorder's counters) at scrape time.
Source = Callable[[], Iterable[Metric]]


class Metrics:
    """Every metric of one engine, and its registry."""

    def __init__(self) -> None:
        wf = ("workflow_type",)
        act = ("activity_type",)
        self.workflows_started = Counter("aion_workflows_started", "Runs started (a continue-as-new starts one).", wf)
        self.workflows_completed = Counter("aion_workflows_completed", "Runs that returned a value.", wf)
        self.workflows_failed = Counter("aion_workflows_failed", "Runs closed with WorkflowFailed.", wf)
        self.workflows_cancelled = Counter("aion_workflows_cancelled", "Runs closed with WorkflowCancelled.", wf)
        self.workflows_terminated = Counter("aion_workflows_terminated", "Runs closed with WorkflowTerminated.", wf)
        self.workflows_timed_out = Counter("aion_workflows_timed_out", "Runs closed with WorkflowTimedOut.", wf)
        self.workflows_continued = Counter(
            "aion_workflows_continued_as_new", "Runs closed with WorkflowContinuedAsNew.", wf
        )
        self.workflow_duration = Histogram(
            "aion_workflow_duration_seconds",
            "From a run's WorkflowStarted to its terminal event (recorded times).",
            (*wf, "outcome"),
            WORKFLOW_BUCKETS,
        )
        self.activity_attempts = Counter("aion_activity_attempts", "Activity attempts a worker took.", act)
        self.activity_failures = Counter(
            "aion_activity_failures", "Activity attempts that failed (retried or final).", (*act, "final")
        )
        self.activity_timeouts = Counter(
            "aion_activity_timeouts", "Activity attempts failed by a timeout, by kind.", (*act, "kind")
        )
        self.activity_schedule_to_start = Histogram(
            "aion_activity_schedule_to_start_seconds",
            "From ActivityScheduled (or the retry time) to ActivityStarted.",
            act,
        )
        self.activity_execution = Histogram(
            "aion_activity_execution_seconds", "From ActivityStarted to the attempt's outcome.", act
        )
        self.timer_lag = Histogram("aion_timer_lag_seconds", "How late a durable timer was handled after its time.")
        self.events = Counter("aion_events_recorded", "Events recorded by the engine, by event type.", ("event_type",))
        self.appends = Counter("aion_appends", "Appends the engine core recorded (one or more events each).")
        self.append_failures = Counter("aion_append_failures", "Appends the store refused or failed.")
        self.commit_seconds = Histogram("aion_recorder_commit_seconds", "One group commit: write and fsync.")
        self.commit_batch = Histogram(
            "aion_recorder_batch_size", "Appends per group commit (transaction).", buckets=BATCH_BUCKETS
        )
        self.process_exits = Counter(
            "aion_process_exits",
            "Supervised processes that exited, by supervisor and exit kind.",
            ("supervisor", "reason"),
        )
        self.process_restarts = Counter(
            "aion_process_restarts",
            "Workflow processes and activity workers restarted after an abnormal exit, by its kind.",
            ("supervisor", "reason"),
        )
        self.process_gave_up = Counter(
            "aion_process_gave_up",
            "Workflow processes past their restart intensity (their run fails).",
            ("supervisor",),
        )
        self.workflows_blocked = Counter(
            "aion_workflows_blocked",
            "Runs blocked: the engine's code does not fit them (WorkflowBlocked), by cause.",
            (*wf, "cause"),
        )
        self.workflows_unblocked = Counter(
            "aion_workflows_unblocked", "Blocked runs whose code fits again (WorkflowUnblocked).", wf
        )
        self.workflows_paused = Counter("aion_workflows_paused", "Runs paused by an operator.", wf)
        self.workflows_resumed = Counter("aion_workflows_resumed", "Paused runs resumed.", wf)
        self.workflows_reset = Counter("aion_workflows_reset", "Resets: new runs from a copy of an earlier one.", wf)
        self.schedule_fires = Counter(
            "aion_schedule_fires",
            "Schedule fires that started their workflow, by trigger (spec, trigger, backfill).",
            (*wf, "trigger"),
        )
        self.schedule_skips = Counter(
            "aion_schedule_skips",
            "Schedule fires skipped, by reason (overlap, buffer_full, exists, start_failed).",
            (*wf, "reason"),
        )
        self.schedule_buffered = Counter(
            "aion_schedule_buffered", "Schedule fires buffered until the running workflow closes.", wf
        )
        self.schedule_missed = Counter(
            "aion_schedule_missed", "Schedule fire times missed: due outside the catch-up window.", wf
        )
        self.schedule_lateness = Histogram(
            "aion_schedule_fire_lateness_seconds",
            "How late the schedule service handled a fire of the spec after its due time (jitter included).",
            wf,
        )
        self.control_requests = Counter("aion_control_requests", "Control-socket requests, by operation.", ("op",))
        self._control_lock = threading.Lock()
        self.sources: list[Source] = []
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))

    def control_request(self, op: str) -> None:
        """Count one control-socket request (from the control server's threads)."""
        with self._control_lock:
            self.control_requests.inc((op,))

    def families(self) -> Iterator[Metric]:
        """Every family, for a scrape."""
        for value in vars(self).values():
            if isinstance(value, Counter | Histogram):
                yield value.family()
        for source in self.sources:
            yield from source()


class _Collector(Collector):
    """The registry's view of :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.families())


def gauge(name: str, doc: str, value: float) -> Metric:
    """A one-series gauge family."""
    return GaugeMetricFamily(name, doc, value=value)


def counter(name: str, doc: str, value: float) -> Metric:
    """A one-series counter family (from a count kept elsewhere)."""
    return CounterMetricFamily(name, doc, value=value)


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) → ``(host, port)``; ``InvalidArgumentError`` if malformed."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"metrics address must be HOST:PORT (port 0-65535), got {address!r}")
    return host, int(port)


class MetricsServer:
    """The ``/metrics`` HTTP endpoint of one engine's registry (prometheus-client's server, in a thread)."""

    def __init__(self, metrics: Metrics, address: str) -> None:
        host, port = parse_address(address)
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
        self._server: Any = server
        self._thread = thread
        self.address: tuple[str, int] = (host, int(server.server_address[1]))

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""Observability: structured logs, Prometheus metrics and OpenTelemetry traces of an engine.

- :mod:`aion.observability._logging`: the JSON formatter and ``configure_logging`` (``aion serve --log-format``);
  the structured fields every record carries (``workflow_id``, ``run_id``, ``activity_id``...).
- :mod:`aion.observability._metrics`: the metrics, counted with plain ints in the thread that sees them and
  exported by a custom collector on a per-engine ``CollectorRegistry``; the ``/metrics`` HTTP server.
- :mod:`aion.observability._tracing`: spans built in the engine process from recorded events (optional extra
  ``aion[otel]``).
- :mod:`aion.observability._setup`: :class:`Telemetry`, what ``Engine(metrics=..., tracer_provider=...)`` turns on.
- :mod:`aion.observability._observer`: the :class:`Observer` the engine core tells what it records and what
  happens to processes; it feeds the three above.

``docs/operations.md`` lists the logger names, the metrics and the tracing set-up.
"""

from aion.observability._logging import JsonFormatter, configure_logging
from aion.observability._metrics import Metrics, MetricsServer, parse_address
from aion.observability._observer import Observer

__all__ = ["JsonFormatter", "Metrics", "MetricsServer", "Observer", "configure_logging", "parse_address"]

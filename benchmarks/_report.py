"""What every benchmark prints: a table for people and one JSON line for machines."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples`` by the nearest-rank method; NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def met_text(flag: Any) -> str:
    """A target's ``met`` cell: ``yes``, ``NO``, or empty when the figure has no target (``None``)."""
    return "" if flag is None else ("yes" if flag else "NO")


def machine() -> dict[str, Any]:
    """The facts that make a figure comparable: cores, Python, platform, date, the 1-minute load average when
    the benchmark ran (other work on the machine skews every figure), and how fast this machine runs Python
    (`python_speed_ms`: two VMs of one kind differ by up to a third)."""
    return {
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "python_speed_ms": python_speed_ms(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).date().isoformat(),
    }


def python_speed_ms() -> float:
    """How long a fixed piece of pure Python takes here, in ms, best of three (lower is faster): calls, small
    dicts, tuples and strings, what the engine and a replay spend their interpreter time on, with no I/O. The
    interpreter-bound figures (replay, CPU per workflow) of two sittings compare once scaled by it."""
    best = math.inf
    for _ in range(3):
        began = time.perf_counter()
        _fixed_work()
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 2)


def _fixed_work() -> int:
    by_kind: dict[int, list[tuple[int, str]]] = {}
    total = 0
    for seq in range(20_000):
        event = {"seq": seq, "kind": seq % 7, "payload": (seq, str(seq))}
        by_kind.setdefault(event["kind"], []).append(_stamp(event))
        total += len(event["payload"][1])
    return total + sum(len(events) for events in by_kind.values())


def _stamp(event: dict[str, Any]) -> tuple[int, str]:
    return event["seq"], f"{event['kind']}:{event['payload'][1]}"


def report(
    name: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    data: dict[str, Any],
    *,
    facts: dict[str, Any] | None = None,
) -> None:
    """Print ``rows`` as a table titled ``title``, then ``data`` with the machine facts as one JSON line:
    ``facts`` if the caller already read them (for its title), else read now."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    Console(width=120).print(table)
    print(json.dumps({"benchmark": name, **(facts if facts is not None else machine()), **data}, sort_keys=True))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"
    return str(value)

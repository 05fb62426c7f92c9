"""What every benchmark prints: a table for people and one JSON line for machines."""

from __future__ import annotations

import json
import math
import os
import platform
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
    """The facts that make a figure comparable: cores, Python, platform, date, and the 1-minute load average
    when the benchmark ran (other work on the machine skews every figure)."""
    return {
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).date().isoformat(),
    }


def report(name: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], data: dict[str, Any]) -> None:
    """Print ``rows`` as a table titled ``title``, then ``data`` (with the machine facts) as one JSON line."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    Console(width=120).print(table)
    print(json.dumps({"benchmark": name, **machine(), **data}, sort_keys=True))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"
    return str(value)

"""Human-readable renderings (rich tables) of the control views, for the ``aion`` CLI."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aion._tree import walk

_EVENT_BASE_FIELDS = frozenset({"type", "seq", "recorded_at", "workflow_id"})


def cell(value: Any) -> Text:
    """A table cell showing ``value`` literally (no rich markup is interpreted)."""
    return Text("" if value is None else str(value))


def compact(value: Any, limit: int = 120) -> str:
    """``value`` as one line of JSON, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bytes(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _state(node: dict[str, Any]) -> str:
    state = str(node.get("state") or "")
    workflow = node.get("workflow") or {}
    if workflow.get("waiting_on") and state == "running":
        return f"running, waiting on {workflow['waiting_on']}"
    if workflow.get("status") and workflow.get("status") != "running":
        return f"{state} ({workflow['status']})"
    return state


def tree_table(view: dict[str, Any]) -> Table:
    """The supervision tree as an indented table: one row per node."""
    title = f"aion engine pid {view.get('pid')} on {view.get('data_dir')}"
    residency = view.get("residency")
    if residency:
        title += (
            f"; {residency['resident']}/{residency['max_resident']} runs resident, {residency['waiting']} waiting,"
            f" {residency['evictions']} evicted so far"
        )
    table = Table(title=title, title_justify="left")
    for name in ("node", "kind", "pid", "workflow id", "state", "restarts", "last exit", "uptime", "memory", "cpu"):
        table.add_column(name, overflow="fold")
    for depth, node in walk(view["root"]):
        workflow = node.get("workflow") or {}
        meta = node.get("meta") or {}
        last_exit = node.get("last_exit") or {}
        exit_text = last_exit.get("signal") or last_exit.get("kind") or ""
        table.add_row(
            cell("  " * depth + str(node.get("id"))),
            cell(node.get("kind")),
            cell(node.get("pid")),
            cell(workflow.get("workflow_id") or meta.get("workflow_id")),
            cell(_state(node)),
            cell(node.get("restarts", "")),
            cell(exit_text),
            cell(_seconds(node.get("uptime"))),
            cell(_bytes(node.get("memory_rss"))),
            cell("" if node.get("cpu_seconds") is None else f"{node['cpu_seconds']:.2f}s"),
        )
    for run in view.get("blocked") or []:  # blocked runs hold no process: listed after the tree, with the cause
        block = run.get("blocked") or {}
        state = f"blocked ({block.get('cause')}): {compact(block.get('message'), 200)}"
        table.add_row(cell("blocked"), cell("run"), cell(None), cell(run["workflow_id"]), cell(state), *[cell("")] * 5)
    return table


def list_table(workflows: list[dict[str, Any]]) -> RenderableType:
    """``aion list`` as a table."""
    if not workflows:
        return Text("no workflows")
    table = Table()
    for name in ("workflow id", "type", "version", "status", "run id", "run #", "started", "closed"):
        table.add_column(name, overflow="fold")
    for run in workflows:
        table.add_row(
            cell(run["workflow_id"]),
            cell(run["workflow_type"]),
            cell(run.get("version")),
            cell(run["status"]),
            cell(run["run_id"]),
            cell(run["run_number"]),
            cell(run["start_time"]),
            cell(run["close_time"]),
        )
    return Group(table, Text(f"{len(workflows)} workflow(s)"))


def describe_table(view: dict[str, Any]) -> RenderableType:
    """``aion describe`` as a two-column table, then the pending work."""
    table = Table(show_header=False, title=f"workflow {view['workflow_id']}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key in (
        "workflow_id",
        "run_id",
        "workflow_type",
        "status",
        "run_number",
        "start_time",
        "close_time",
        "history_length",
        "waiting_on",
        "version",
    ):
        table.add_row(cell(key), cell(view.get(key)))
    for key in ("blocked", "reset_to", "input", "result", "failure", "search_attributes"):
        if view.get(key) not in (None, {}):
            table.add_row(cell(key), cell(compact(view[key], 400)))
    parts: list[RenderableType] = [table]
    pending = view.get("pending") or {}
    rows = [
        ("activity", f"{a['activity_type']} #{a['activity_id']}", f"{a['state']}, attempt {a['attempt']}")
        for a in pending.get("activities", [])
    ]
    rows += [("timer", f"#{t['timer_id']}", f"fires at {t['fire_at']}") for t in pending.get("timers", [])]
    rows += [("child", c["workflow_id"], c["workflow_type"]) for c in pending.get("children", [])]
    if rows:
        pending_table = Table(title="pending", title_justify="left")
        for name in ("kind", "what", "state"):
            pending_table.add_column(name, overflow="fold")
        for row in rows:
            pending_table.add_row(*(cell(value) for value in row))
        parts.append(pending_table)
    return Group(*parts)


def event_details(event: dict[str, Any]) -> str:
    """The fields of an event that are not common to all events, as ``key=value`` pairs."""
    return "  ".join(f"{key}={compact(value, 80)}" for key, value in event.items() if key not in _EVENT_BASE_FIELDS)


def history_table(view: dict[str, Any]) -> Table:
    """``aion history`` as a table: seq, time, event type, details."""
    table = Table(title=f"history of {view['workflow_id']} (run {view['run_id']})", title_justify="left")
    table.add_column("seq", justify="right")
    table.add_column("recorded at")
    table.add_column("event")
    table.add_column("details", overflow="fold")
    for event in view["events"]:
        table.add_row(cell(event["seq"]), cell(event["recorded_at"]), cell(event["type"]), cell(event_details(event)))
    return table


def history_lines(events: Iterable[dict[str, Any]]) -> list[str]:
    """Events as aligned plain lines (``history --follow`` prints them as they arrive)."""
    return [
        f"{event['seq']:>5}  {event['recorded_at']:<32}  {event['type']:<28}  {event_details(event)}".rstrip()
        for event in events
    ]

"""``aion schedule create|list|describe|pause|unpause|trigger|backfill|delete`` (see docs/schedules.md).

``list`` and ``describe`` ask the running engine, or read the store files read-only when no engine runs; the
others change a schedule and need the running engine (its control socket).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from aion.cli._base import (
    cli,
    connect,
    data_dir_option,
    json_option,
    parse_json,
    readonly_store,
    require_engine,
    show,
    show_json,
)
from aion.control._views import to_jsonable
from aion.errors import ScheduleNotFoundError
from aion.schedules import Overlap, load_state
from aion.schedules._handle import describe_state

_OVERLAPS = [member.value for member in Overlap]


@cli.group()
def schedule() -> None:
    """Create, look at and steer schedules."""


def _table(views: list[dict[str, Any]]) -> Table:
    table = Table(title="schedules", title_justify="left")
    for name in ("schedule", "workflow type", "state", "next fire", "fired", "skipped", "missed", "last action"):
        table.add_column(name, overflow="fold")
    for view in views:
        actions = view["recent_actions"]
        last = f"{actions[-1]['workflow_id']} ({actions[-1]['status']})" if actions else ""
        table.add_row(
            view["schedule_id"],
            view["workflow_type"],
            "paused" + (f": {view['note']}" if view["note"] else "") if view["paused"] else "active",
            view["next_fires"][0] if view["next_fires"] else "",
            str(view["fired"]),
            str(view["skipped"]),
            str(view["missed"]),
            last,
        )
    return table


def _offline(data_dir: Path, schedule_id: str | None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)  # a reader's now, for the next fire times: no engine runs
    with readonly_store(data_dir) as store:
        ids = [schedule_id] if schedule_id is not None else store.schedule_ids()
        views = []
        for sid in ids:
            try:
                state = load_state(store, sid)
            except ScheduleNotFoundError:
                if schedule_id is not None:
                    raise
                continue
            views.append(to_jsonable(describe_state(state, store, now).to_dict()))
        return views


def _request(data_dir: Path, op: str, **fields: Any) -> dict[str, Any]:
    with require_engine(data_dir) as client:
        reply: dict[str, Any] = client.request(op, **fields)
        return reply


@schedule.command(name="create")
@data_dir_option
@click.argument("schedule_id")
@click.argument("workflow_type")
@click.option("--args", "args_json", default="[]", help="The workflow's arguments, a JSON list.")
@click.option("--cron", multiple=True, help="A 5-field cron expression (repeatable).")
@click.option("--interval", type=float, help="Seconds between fires.")
@click.option("--offset", type=float, help="Seconds after each interval's start.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the cron expressions.")
@click.option("--skip", multiple=True, help="A cron expression of times not to fire at (repeatable).")
@click.option("--jitter", type=float, help="Delay each fire by up to this many seconds.")
@click.option("--start-at", help="No fire before this ISO 8601 time.")
@click.option("--end-at", help="No fire after this ISO 8601 time.")
@click.option("--overlap", type=click.Choice(_OVERLAPS), default="skip", show_default=True)
@click.option("--catchup-window", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--pause-on-failure", is_flag=True)
@click.option("--paused", is_flag=True, help="Create it paused.")
@json_option
def create(  # noqa: PLR0917 (one parameter per option)
    data_dir: Path,
    schedule_id: str,
    workflow_type: str,
    args_json: str,
    cron: tuple[str, ...],
    interval: float | None,
    offset: float | None,
    timezone: str,
    skip: tuple[str, ...],
    jitter: float | None,
    start_at: str | None,
    end_at: str | None,
    overlap: str,
    catchup_window: float,
    pause_on_failure: bool,
    paused: bool,
    as_json: bool,
) -> None:
    """Create a schedule that starts WORKFLOW_TYPE (needs the running engine)."""
    spec = {
        "cron": list(cron) or None,
        "interval": interval,
        "offset": offset,
        "timezone": timezone,
        "skip": list(skip) or None,
        "jitter": jitter,
        "start_at": start_at,
        "end_at": end_at,
    }
    policy = {"overlap": overlap, "catchup_window": catchup_window, "pause_on_failure": pause_on_failure}
    view = _request(
        data_dir,
        "schedule_create",
        schedule_id=schedule_id,
        workflow_type=workflow_type,
        args=parse_json(args_json, "--args"),
        spec={k: v for k, v in spec.items() if v is not None},
        policy=policy,
        paused=paused,
    )
    show_json(view) if as_json else show(_table([view]))


@schedule.command(name="list")
@data_dir_option
@json_option
def list_(data_dir: Path, as_json: bool) -> None:
    """Every schedule: state, next fire, counts, last action."""
    client = connect(data_dir)
    if client is not None:
        with client:
            views = client.request("schedule_list")["schedules"]
    else:
        views = _offline(data_dir, None)
    show_json({"schedules": views}) if as_json else show(_table(views))


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@json_option
def describe(data_dir: Path, schedule_id: str, as_json: bool) -> None:
    """One schedule: spec, policy, pause, next 10 fires, recent actions and counts."""
    client = connect(data_dir)
    if client is not None:
        with client:
            view = client.request("schedule_describe", schedule_id=schedule_id)
    else:
        view = _offline(data_dir, schedule_id)[0]
    if as_json:
        show_json(view)
        return
    show(_table([view]))
    click.echo("next fires: " + ", ".join(view["next_fires"]))
    for action in view["recent_actions"]:
        click.echo(f"  {action['fire_at']}  {action['workflow_id']}  {action['status']}")


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@click.option("--note", help="Why.")
@json_option
def pause(data_dir: Path, schedule_id: str, note: str | None, as_json: bool) -> None:
    """Pause a schedule (needs the running engine)."""
    view = _request(data_dir, "schedule_pause", schedule_id=schedule_id, note=note)
    show_json(view) if as_json else show(_table([view]))


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@click.option("--note", help="Why.")
@json_option
def unpause(data_dir: Path, schedule_id: str, note: str | None, as_json: bool) -> None:
    """Unpause a schedule (needs the running engine)."""
    view = _request(data_dir, "schedule_unpause", schedule_id=schedule_id, note=note)
    show_json(view) if as_json else show(_table([view]))


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@click.option("--overlap", type=click.Choice(_OVERLAPS), help="Default: the schedule's policy.")
@json_option
def trigger(data_dir: Path, schedule_id: str, overlap: str | None, as_json: bool) -> None:
    """Fire a schedule now (needs the running engine)."""
    view = _request(data_dir, "schedule_trigger", schedule_id=schedule_id, overlap=overlap)
    show_json(view) if as_json else click.echo(_line(view["outcome"]))


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@click.argument("start")
@click.argument("end")
@click.option("--overlap", type=click.Choice(_OVERLAPS), help="Default: the schedule's policy.")
@json_option
def backfill(  # noqa: PLR0917 (one parameter per option)
    data_dir: Path, schedule_id: str, start: str, end: str, overlap: str | None, as_json: bool
) -> None:
    """Fire every time of the spec from START to END (ISO 8601 with offset; needs the running engine)."""
    view = _request(data_dir, "schedule_backfill", schedule_id=schedule_id, start=start, end=end, overlap=overlap)
    if as_json:
        show_json(view)
    else:
        for outcome in view["outcomes"]:
            click.echo(_line(outcome))


@schedule.command()
@data_dir_option
@click.argument("schedule_id")
@json_option
def delete(data_dir: Path, schedule_id: str, as_json: bool) -> None:
    """Delete a schedule (needs the running engine)."""
    view = _request(data_dir, "schedule_delete", schedule_id=schedule_id)
    show_json(view) if as_json else click.echo(f"deleted {schedule_id}")


def _line(outcome: dict[str, Any]) -> str:
    what = outcome.get("started_workflow_id") or outcome.get("reason") or ""
    return f"{outcome['type']} {outcome['fire_at']} {what}"

"""The commands that read runs: ``list`` (``--query``), ``count``, ``describe`` and ``history`` (``--follow``).

Each asks the running engine through its control socket, or reads the store files read-only when no engine
runs (the same views either way, see ``aion.control._views``). They never change anything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from aion.cli._base import (
    STATUSES,
    checked_workflow_id,
    cli,
    connect,
    data_dir_option,
    how_to_start,
    json_option,
    readonly_store,
    show,
    show_json,
    to_json,
)
from aion.control._render import describe_table, history_lines, history_table, list_table
from aion.control._views import count_view, describe_view, history_view, list_view, page_view
from aion.errors import EngineNotRunningError
from aion.visibility import MAX_PAGE_SIZE, count_workflows, list_workflows


@cli.command(name="list")
@data_dir_option
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--type", "workflow_type", help="Only workflows of this type.")
@click.option("--limit", type=click.IntRange(min=1, max=2**53), help="At most this many (newest first).")
@click.option("--query", "-q", help="A visibility query (see docs/visibility.md); prints one page.")
@click.option("--page-size", type=click.IntRange(min=1, max=MAX_PAGE_SIZE), default=100, show_default=True)
@click.option("--page-token", help="Continue after the page that printed this token.")
@json_option
def list_(  # noqa: PLR0917 - one parameter per click option
    data_dir: Path,
    status: str | None,
    workflow_type: str | None,
    limit: int | None,
    query: str | None,
    page_size: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """The workflows' current runs, newest first (or as a --query orders them)."""
    if query is not None and (status or workflow_type or limit):
        raise click.UsageError("--query replaces --status, --type and --limit (write them in the query)")
    client = connect(data_dir)
    if client is not None:
        with client:
            if query is not None:
                view = client.request("list", query=query, page_size=page_size, next_page_token=page_token)
            else:
                view = client.request("list", status=status, workflow_type=workflow_type, limit=limit)
    else:
        with readonly_store(data_dir) as store:
            if query is not None:
                view = page_view(list_workflows(store, query, page_size=page_size, next_page_token=page_token))
            else:
                runs = store.list_workflows(status=status, workflow_type=workflow_type, limit=limit)
                view = list_view(store, runs)
    if as_json:
        show_json(view)
        return
    show(list_table(view["workflows"]))
    if view.get("next_page_token"):
        click.echo(f"next page: --page-token {view['next_page_token']}")


@cli.command()
@data_dir_option
@click.option("--query", "-q", help="A visibility query (see docs/visibility.md); every run when absent.")
@json_option
def count(data_dir: Path, query: str | None, as_json: bool) -> None:
    """How many workflows match a query (by status with GROUP BY Status)."""
    client = connect(data_dir)
    if client is not None:
        with client:
            view = client.request("count", query=query)
    else:
        with readonly_store(data_dir) as store:
            view = count_view(count_workflows(store, query))
    if as_json:
        show_json(view)
        return
    click.echo(str(view["count"]))
    for status, number in view["groups"].items():
        click.echo(f"  {status}: {number}")


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@json_option
def describe(data_dir: Path, workflow_id: str, as_json: bool) -> None:
    """A workflow's current run: status, times, input, outcome and what it waits on."""
    workflow_id = checked_workflow_id(workflow_id)
    client = connect(data_dir)
    if client is not None:
        with client:
            view = client.request("describe", workflow_id=workflow_id)
    else:
        with readonly_store(data_dir) as store:
            view = describe_view(store, workflow_id)
    show_json(view) if as_json else show(describe_table(view))


def _fetch_history(data_dir: Path, workflow_id: str, after_seq: int, wait: float) -> dict[str, Any]:
    client = connect(data_dir)
    if client is not None:
        with client:
            return client.request(
                "history", workflow_id=workflow_id, after_seq=after_seq, wait=wait, reply_timeout=wait + 30
            )
    with readonly_store(data_dir) as store:
        view = history_view(store, workflow_id, after_seq)
    if wait and not view["events"] and not view["closed"]:
        time.sleep(min(wait, 0.5))  # no engine to wait on: poll the files
    return view


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run closes.")
@click.option(
    "--wait-for-engine", is_flag=True, help="With --follow and no engine running: wait for one instead of failing."
)
@json_option
def history(data_dir: Path, workflow_id: str, follow: bool, wait_for_engine: bool, as_json: bool) -> None:
    """The events of a workflow's current run."""
    workflow_id = checked_workflow_id(workflow_id)
    view = _fetch_history(data_dir, workflow_id, 0, 0)
    if not follow:
        show_json(view) if as_json else show(history_table(view))
        return
    if not view["closed"] and connect(data_dir) is None:
        if not wait_for_engine:
            raise EngineNotRunningError(
                f"workflow {workflow_id!r} is running but no engine runs on {str(data_dir)!r}, so nothing would "
                f"follow; {how_to_start(data_dir)} (or pass --wait-for-engine to wait for one)"
            )
        click.echo(f"no engine runs on {data_dir}: waiting for one (Ctrl-C stops)", err=True)
    run_id = view["run_id"]
    if not as_json:
        click.echo(f"history of {workflow_id} (run {run_id}), following")
    last = 0
    while True:
        for event in view["events"]:
            click.echo(to_json(event) if as_json else history_lines([event])[0])
            last = max(last, int(event["seq"]))
        if view["closed"] or view["run_id"] != run_id:
            return
        view = _fetch_history(data_dir, workflow_id, last, 5.0)

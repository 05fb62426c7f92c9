"""The commands that act on a run: ``start``, ``signal``, ``query``, ``update``, ``cancel``, ``terminate`` and
``result``.

All but ``result`` need a running engine; ``result`` of a closed run is read from the store files when none
runs. They never write the store themselves: every change goes through the engine's control socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aion.cli._base import (
    checked_workflow_id,
    cli,
    connect,
    data_dir_option,
    how_to_start,
    json_option,
    parse_json,
    readonly_store,
    require_engine,
    show_json,
    status_line,
)
from aion.control import RemoteError
from aion.control._views import describe_view, to_jsonable
from aion.errors import (
    AionError,
    EngineNotRunningError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowTerminatedError,
    WorkflowTimedOutError,
)
from aion.status import WorkflowStatus


def _json_input(value: str | None) -> list[Any]:
    if value is None:
        return []
    parsed = parse_json(value, "--input")
    return parsed if isinstance(parsed, list) else [parsed]


@cli.command()
@data_dir_option
@click.argument("workflow_type")
@click.option("--input", "input_", metavar="JSON", help="Input: a JSON array is the argument list, else one argument.")
@click.option("--id", "workflow_id", help="Workflow id [default: a new UUID].")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--signal", "signal_name", metavar="NAME", help="Signal-with-start: send signal NAME with the start.")
@click.option("--payload", metavar="JSON", help="With --signal: the signal's payload, as JSON [default: null].")
@json_option
def start(  # noqa: PLR0917 - one parameter per click option
    data_dir: Path,
    workflow_type: str,
    input_: str | None,
    workflow_id: str | None,
    wait: bool,
    signal_name: str | None,
    payload: str | None,
    as_json: bool,
) -> None:
    """Start a workflow of type WORKFLOW_TYPE (with --signal: signal it, starting it only if it is not running)."""
    args = _json_input(input_)
    if payload is not None and signal_name is None:
        raise click.BadParameter("--payload goes with --signal", param_hint="--payload")
    extra: dict[str, Any] = {}
    if signal_name is not None:
        extra = {"signal": signal_name, "payload": None if payload is None else parse_json(payload, "--payload")}
    with require_engine(data_dir) as client:
        view = client.request("start", workflow_type=workflow_type, args=args, workflow_id=workflow_id, **extra)
        if not as_json:
            sent = f" with signal {signal_name}" if signal_name is not None else ""
            click.echo(f"started workflow {view['workflow_id']} (run {view['run_id']}){sent}")
        if wait:
            with status_line(f"waiting for the result of {view['workflow_id']} (run {view['run_id']})"):
                outcome = client.request("result", workflow_id=view["workflow_id"], reply_timeout=None)
            view["result"] = outcome["result"]
    if as_json:
        show_json(view)
    elif wait:
        click.echo(json.dumps(view["result"], ensure_ascii=False))


@cli.command(name="signal")
@data_dir_option
@click.argument("workflow_id")
@click.argument("name")
@click.option("--payload", metavar="JSON", help="The signal's payload, as JSON [default: null].")
@json_option
def signal_(data_dir: Path, workflow_id: str, name: str, payload: str | None, as_json: bool) -> None:
    """Send signal NAME to a workflow; returns once the signal is durable."""
    value = None if payload is None else parse_json(payload, "--payload")
    with require_engine(data_dir) as client:
        view = client.request("signal", workflow_id=checked_workflow_id(workflow_id), name=name, payload=value)
    if as_json:
        show_json(view)
    else:
        click.echo(f"signal {name} sent to {view['workflow_id']} (run {view['run_id']})")


def _query_arg(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.argument("name")
@click.argument("args", nargs=-1)
@json_option
def query(data_dir: Path, workflow_id: str, name: str, args: tuple[str, ...], as_json: bool) -> None:
    """Ask a workflow's query handler NAME; each ARG is JSON, or a plain string if it is not valid JSON."""
    with require_engine(data_dir) as client:
        arguments = [_query_arg(a) for a in args]
        wid = checked_workflow_id(workflow_id)
        view = client.request("query", workflow_id=wid, name=name, args=arguments, reply_timeout=60)
    show_json(view) if as_json else click.echo(json.dumps(view["result"], ensure_ascii=False))


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.argument("name")
@click.option("--args", "args_", metavar="JSON", help="The update's arguments: a JSON array is the list, else one.")
@json_option
def update(data_dir: Path, workflow_id: str, name: str, args_: str | None, as_json: bool) -> None:
    """Apply update NAME to a running workflow and print its handler's result as JSON, once it is durable."""
    arguments = [] if args_ is None else parse_json(args_, "--args")
    arguments = arguments if isinstance(arguments, list) else [arguments]
    wid = checked_workflow_id(workflow_id)
    with require_engine(data_dir) as client, status_line(f"waiting for update {name} of {wid}"):
        view = client.request("update", workflow_id=wid, name=name, args=arguments, reply_timeout=None)
    show_json(view) if as_json else click.echo(json.dumps(view["result"], ensure_ascii=False))


def _close_command(how: str, done: str) -> Callable[..., None]:
    def command(data_dir: Path, workflow_id: str, reason: str | None, as_json: bool) -> None:
        with require_engine(data_dir) as client:
            view = client.request(how, workflow_id=checked_workflow_id(workflow_id), reason=reason, reply_timeout=60)
        if as_json:
            show_json(view)
        elif view["took_effect"]:
            click.echo(f"{done} {view['workflow_id']} (run {view['run_id']})")
        else:
            click.echo(f"workflow {view['workflow_id']} (run {view['run_id']}) was already closed; nothing to {how}")

    return command


for _how, _done, _help in (
    ("cancel", "cancellation requested for", "Request cancellation of a workflow (its code may clean up)."),
    ("terminate", "terminated", "Terminate a workflow at once (no clean-up code runs)."),
):
    cli.command(name=_how, help=_help)(
        data_dir_option(
            click.argument("workflow_id")(
                click.option("--reason", help="Why; recorded in the history.")(json_option(_close_command(_how, _done)))
            )
        )
    )


def _closed_outcome(data_dir: Path, workflow_id: str) -> dict[str, Any] | None:
    """The outcome of a closed run read from the files (``None`` while it is open)."""
    with readonly_store(data_dir) as store:
        view = describe_view(store, workflow_id)
    status = view["status"]
    if status == WorkflowStatus.RUNNING.value:
        return None
    if status == WorkflowStatus.COMPLETED.value:
        return {"workflow_id": workflow_id, "run_id": view["run_id"], "result": view["result"]}
    failure = view.get("failure") or {}
    errors: dict[str, type[AionError]] = {
        "failed": WorkflowFailedError,
        "cancelled": WorkflowCancelledError,
        "terminated": WorkflowTerminatedError,
        "timed_out": WorkflowTimedOutError,
    }
    detail = f": {failure.get('type')}: {failure.get('message')}" if failure else ""
    raise RemoteError(errors.get(status, WorkflowFailedError).code, f"workflow {workflow_id!r} {status}{detail}")


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait [default: forever].")
@json_option
def result(data_dir: Path, workflow_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a workflow's result and print it as JSON (errors for failed, cancelled... runs)."""
    workflow_id = checked_workflow_id(workflow_id)
    client = connect(data_dir)
    if client is not None:
        with client, status_line(f"waiting for the result of {workflow_id}"):
            view = client.request(
                "result",
                workflow_id=workflow_id,
                timeout=timeout,
                reply_timeout=None if timeout is None else timeout + 30,
            )
    else:
        outcome = _closed_outcome(data_dir, workflow_id)
        if outcome is None:
            raise EngineNotRunningError(
                f"workflow {workflow_id!r} is still running and no engine runs on {str(data_dir)!r}; "
                + how_to_start(data_dir)
            )
        view = outcome
    show_json(view) if as_json else click.echo(json.dumps(to_jsonable(view["result"]), ensure_ascii=False))

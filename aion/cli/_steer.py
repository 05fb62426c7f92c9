"""The commands that act on a run: ``start``, ``signal``, ``query``, ``update``, ``cancel``, ``terminate`` and
``result``.

All but ``result`` need a running engine; ``result`` of a closed run is read from the store files when none
runs. They never write the store themselves: every change goes through the engine's control socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aion.cli._base import (
    Seconds,
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
    to_json,
)
from aion.control import ControlClient, RemoteError
from aion.control._views import describe_view, to_jsonable
from aion.errors import (
    AionError,
    EngineNotRunningError,
    ResultTimeoutError,
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
@click.option(
    "--search-attr",
    "search_attrs",
    metavar="NAME=VALUE",
    multiple=True,
    help="A declared search attribute (repeatable); the value is converted to the attribute's type.",
)
@click.option("--memo", metavar="JSON", help="A memo shown with the run (any JSON), never indexed.")
@click.option("--signal", "signal_name", metavar="NAME", help="Signal-with-start: send signal NAME with the start.")
@click.option("--payload", metavar="JSON", help="With --signal: the signal's payload, as JSON [default: null].")
@json_option
def start(  # noqa: PLR0917 - one parameter per click option
    data_dir: Path,
    workflow_type: str,
    input_: str | None,
    workflow_id: str | None,
    wait: bool,
    search_attrs: tuple[str, ...],
    memo: str | None,
    signal_name: str | None,
    payload: str | None,
    as_json: bool,
) -> None:
    """Start a workflow of type WORKFLOW_TYPE (with --signal: signal it, starting it only if it is not running)."""
    args = _json_input(input_)
    if payload is not None and signal_name is None:
        raise click.BadParameter("--payload goes with --signal", param_hint="--payload")
    attributes: dict[str, str] = {}
    for item in search_attrs:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, not {item!r}", param_hint="--search-attr")
        attributes[name.strip()] = value
    memo_value = None if memo is None else parse_json(memo, "--memo")
    extra: dict[str, Any] = {"search_attributes": attributes, "memo": memo_value}
    if signal_name is not None:
        extra.update(signal=signal_name, payload=None if payload is None else parse_json(payload, "--payload"))
    with require_engine(data_dir) as client:
        view = client.request("start", workflow_type=workflow_type, args=args, workflow_id=workflow_id, **extra)
        if not as_json:
            sent = f" with signal {signal_name}" if signal_name is not None else ""
            click.echo(f"started workflow {view['workflow_id']} (run {view['run_id']}){sent}")
        if wait:
            with status_line(f"waiting for the result of {view['workflow_id']} (run {view['run_id']})"):
                view["result"] = wait_result(client, view["workflow_id"], None)["result"]
    if as_json:
        show_json(view)
    elif wait:
        click.echo(to_json(view["result"]))


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
        return json.loads(value, parse_constant=_not_json)
    except ValueError:  # not JSON (NaN and Infinity included): the plain string
        return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
    show_json(view) if as_json else click.echo(to_json(view["result"]))


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
    if WorkflowStatus(status).is_open:
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
@click.option("--timeout", type=Seconds(), help="Seconds to wait [default: forever].")
@json_option
def result(data_dir: Path, workflow_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a workflow's result and print it as JSON (errors for failed, cancelled... runs)."""
    workflow_id = checked_workflow_id(workflow_id)
    client = connect(data_dir)
    if client is not None:
        with client, status_line(f"waiting for the result of {workflow_id}"):
            view = wait_result(client, workflow_id, timeout)
    else:
        outcome = _closed_outcome(data_dir, workflow_id)
        if outcome is None:
            raise EngineNotRunningError(
                f"workflow {workflow_id!r} is still running and no engine runs on {str(data_dir)!r}; "
                + how_to_start(data_dir)
            )
        view = outcome
    show_json(view) if as_json else click.echo(to_json(to_jsonable(view["result"])))


def wait_result(client: ControlClient, workflow_id: str, timeout: float | None) -> dict[str, Any]:
    """The ``result`` reply for ``workflow_id``, waiting up to ``timeout`` seconds (``None``: as long as it takes).
    The engine answers each request within a bounded time (``result_timeout`` while the run is open), so this asks
    again until the run closes or the caller's own deadline passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            return client.request("result", workflow_id=workflow_id, timeout=remaining, reply_timeout=90)
        except RemoteError as error:
            if error.code != ResultTimeoutError.code:
                raise
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(
                    f"workflow {workflow_id!r} did not close within {timeout:g} s (it is still running)"
                ) from None

"""The ``aion`` command line: run an engine, look at it and steer it from a shell.

Every command takes ``--data-dir`` (default ``$AION_DATA_DIR``, else ``./aion-data``). Commands talk to the
running engine through its control socket (``<data_dir>/control.sock``); ``list``, ``describe``, ``history``
and ``result`` of a closed run also work from the store files, read-only, when no engine runs. Errors print
``error[<code>]: <message>`` and exit 1; usage errors exit 2. See ``docs/cli.md``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console, RenderableType

import aion
from aion._definitions import activity_definition, workflow_definition
from aion._ids import validate_workflow_id
from aion.control import ControlClient, RemoteError, connect_engine, socket_path
from aion.control._render import describe_table, history_lines, history_table, list_table, tree_table
from aion.control._views import describe_view, history_view, run_view, to_jsonable
from aion.engine._residency import DEFAULT_MAX_RESIDENT
from aion.errors import (
    AionError,
    EngineNotRunningError,
    NotFoundError,
    RegistrationError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowTerminatedError,
    WorkflowTimedOutError,
)
from aion.status import WorkflowStatus
from aion.store import LmdbEventStore, open_store

#: Environment variable naming the default data directory.
DATA_DIR_ENV = "AION_DATA_DIR"
#: The data directory used when neither ``--data-dir`` nor ``$AION_DATA_DIR`` is given.
DEFAULT_DATA_DIR = "aion-data"

_STATUSES = [status.value for status in WorkflowStatus]


def _console() -> Console:
    """A console that never cuts table cells when output goes to a pipe or a file."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1000, soft_wrap=False)


def _print(renderable: RenderableType) -> None:
    _console().print(renderable)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _fail(code: str, message: str) -> NoReturn:
    click.echo(f"error[{code}]: {message}", err=True)
    raise SystemExit(1)


class _AionGroup(click.Group):
    """A group that prints aion errors as ``error[<code>]: <message>`` and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AionError as error:
            _fail(error.code, str(error))
        except RemoteError as error:
            _fail(error.code, error.message)


def _data_dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default=DEFAULT_DATA_DIR,
        show_default=True,
        show_envvar=True,
        help="The engine's data directory.",
    )(function)


def _json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print stable JSON (see docs/cli.md).")(function)


def _how_to_start(data_dir: Path) -> str:
    return f"start an engine with: aion serve --data-dir {data_dir} --module <your.workflows.module>"


def _check_data_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise NotFoundError(f"data directory {str(data_dir)!r} does not exist; {_how_to_start(data_dir)}")


def _connect(data_dir: Path) -> ControlClient | None:
    _check_data_dir(data_dir)
    return connect_engine(data_dir)


def _require_engine(data_dir: Path) -> ControlClient:
    client = _connect(data_dir)
    if client is None:
        raise EngineNotRunningError(
            f"no engine is running on {str(data_dir)!r} (nothing answers on {socket_path(data_dir)}); "
            + _how_to_start(data_dir)
        )
    return client


@contextlib.contextmanager
def _readonly_store(data_dir: Path) -> Iterator[LmdbEventStore]:
    store = open_store(data_dir, readonly=True)
    try:
        yield store
    finally:
        store.close()


def _parse_json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        message = f"not valid JSON ({error.msg} at column {error.colno}): {value!r}"
        raise click.BadParameter(message, param_hint=what) from None


def _workflow_id(value: str) -> str:
    return validate_workflow_id(value)


# -- the commands ---------------------------------------------------------------------------------------------


@click.group(cls=_AionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(aion.__version__, prog_name="aion")
def cli() -> None:
    """aion: operate a durable workflow engine."""


@cli.command()
def demo() -> None:
    """Run the self-contained demo: a workflow survives the SIGKILL of its process."""
    from aion import demo as demo_module  # noqa: PLC0415 - imported on use: it defines workflows

    demo_module.main()


def _discover(modules: tuple[str, ...]) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
    """The ``@workflow.defn`` and ``@activity.defn`` functions defined or imported in ``modules``."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like ``python -m``: modules of the current directory import
    workflows: dict[int, Callable[..., Any]] = {}
    activities: dict[int, Callable[..., Any]] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise click.BadParameter(f"cannot import {name!r}: {error}", param_hint="--module") from None
        for value in vars(module).values():
            if getattr(value, "__aion_workflow__", None) is not None:
                with contextlib.suppress(RegistrationError):
                    workflow_definition(value)
                    workflows[id(value)] = value
            if getattr(value, "__aion_activity__", None) is not None:
                with contextlib.suppress(RegistrationError):
                    activity_definition(value)
                    activities[id(value)] = value
    return list(workflows.values()), list(activities.values())


@cli.command()
@_data_dir_option
@click.option("--module", "-m", "modules", multiple=True, required=True, help="Module with workflows (repeatable).")
@click.option("--activity-workers", type=click.IntRange(min=1), help="Activity worker processes [default: CPUs].")
@click.option("--warm-pool", type=click.IntRange(min=0), default=2, show_default=True, help="Idle forked hosts.")
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Crashes of one workflow process (within 60 s) before its run fails.",
)
@click.option(
    "--max-resident",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_RESIDENT,
    show_default=True,
    help="Runs holding a workflow process at once (parked runs beyond it are evicted, new runs wait).",
)
def serve(
    *,
    data_dir: Path,
    modules: tuple[str, ...],
    activity_workers: int | None,
    warm_pool: int,
    max_restarts: int,
    max_resident: int,
) -> None:
    """Run an engine in the foreground with the workflows and activities of the modules.

    Stops cleanly (finishing history writes) on SIGINT or SIGTERM.
    """
    workflows, activities = _discover(modules)
    if not workflows:
        raise click.BadParameter(f"no @workflow.defn functions in {', '.join(modules)}", param_hint="--module")
    engine = aion.Engine(
        data_dir,
        workflows=workflows,
        activities=activities,
        activity_workers=activity_workers,
        warm_pool=warm_pool,
        max_restarts=max_restarts,
        max_resident=max_resident,
    )
    stop = threading.Event()
    engine.start()
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        names = sorted(engine.registry.workflows)
        click.echo(
            f"aion engine (pid {os.getpid()}) serving {data_dir} with workflows {', '.join(names)}; "
            f"control socket {socket_path(data_dir)}",
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        click.echo("stopping")
    finally:
        engine.stop()
    click.echo("stopped")


@cli.command()
@_data_dir_option
@click.option("--watch", is_flag=True, help="Refresh in place until interrupted.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="Refresh period.")
@_json_option
def tree(data_dir: Path, watch: bool, interval: float, as_json: bool) -> None:
    """The live supervision tree: services, workflow supervisors and workflow processes."""
    with _require_engine(data_dir) as client:
        if not watch:
            view = client.request("tree")
            _print_json(view) if as_json else _print(tree_table(view))
            return
        if as_json:
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    click.echo(json.dumps(client.request("tree")))
                    time.sleep(interval)
            return
        from rich.live import Live  # noqa: PLC0415 - only for --watch

        first = tree_table(client.request("tree"))
        with contextlib.suppress(KeyboardInterrupt), Live(first, console=_console()) as live:
            while True:
                time.sleep(interval)
                live.update(tree_table(client.request("tree")))


@cli.command(name="list")
@_data_dir_option
@click.option("--status", type=click.Choice(_STATUSES), help="Only runs with this status.")
@click.option("--type", "workflow_type", help="Only workflows of this type.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (newest first).")
@_json_option
def list_(data_dir: Path, status: str | None, workflow_type: str | None, limit: int | None, as_json: bool) -> None:
    """The workflows' current runs, newest first."""
    client = _connect(data_dir)
    if client is not None:
        with client:
            view = client.request("list", status=status, workflow_type=workflow_type, limit=limit)
    else:
        with _readonly_store(data_dir) as store:
            runs = store.list_workflows(status=status, workflow_type=workflow_type, limit=limit)
            view = {"workflows": [run_view(info) for info in runs]}
    _print_json(view) if as_json else _print(list_table(view["workflows"]))


@cli.command()
@_data_dir_option
@click.argument("workflow_id")
@_json_option
def describe(data_dir: Path, workflow_id: str, as_json: bool) -> None:
    """A workflow's current run: status, times, input, outcome and what it waits on."""
    workflow_id = _workflow_id(workflow_id)
    client = _connect(data_dir)
    if client is not None:
        with client:
            view = client.request("describe", workflow_id=workflow_id)
    else:
        with _readonly_store(data_dir) as store:
            view = describe_view(store, workflow_id)
    _print_json(view) if as_json else _print(describe_table(view))


def _fetch_history(data_dir: Path, workflow_id: str, after_seq: int, wait: float) -> dict[str, Any]:
    client = _connect(data_dir)
    if client is not None:
        with client:
            return client.request(
                "history", workflow_id=workflow_id, after_seq=after_seq, wait=wait, reply_timeout=wait + 30
            )
    with _readonly_store(data_dir) as store:
        view = history_view(store, workflow_id, after_seq)
    if wait and not view["events"] and not view["closed"]:
        time.sleep(min(wait, 0.5))  # no engine to wait on: poll the files
    return view


@cli.command()
@_data_dir_option
@click.argument("workflow_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run closes.")
@_json_option
def history(data_dir: Path, workflow_id: str, follow: bool, as_json: bool) -> None:
    """The events of a workflow's current run."""
    workflow_id = _workflow_id(workflow_id)
    view = _fetch_history(data_dir, workflow_id, 0, 0)
    if not follow:
        _print_json(view) if as_json else _print(history_table(view))
        return
    run_id = view["run_id"]
    if not as_json:
        click.echo(f"history of {workflow_id} (run {run_id}), following")
    with contextlib.suppress(KeyboardInterrupt):
        last = 0
        while True:
            for event in view["events"]:
                click.echo(json.dumps(event) if as_json else history_lines([event])[0])
                last = max(last, int(event["seq"]))
            if view["closed"] or view["run_id"] != run_id:
                return
            view = _fetch_history(data_dir, workflow_id, last, 5.0)


def _json_input(value: str | None) -> list[Any]:
    if value is None:
        return []
    parsed = _parse_json(value, "--input")
    return parsed if isinstance(parsed, list) else [parsed]


@cli.command()
@_data_dir_option
@click.argument("workflow_type")
@click.option("--input", "input_", metavar="JSON", help="Input: a JSON array is the argument list, else one argument.")
@click.option("--id", "workflow_id", help="Workflow id [default: a new UUID].")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@_json_option
def start(  # noqa: PLR0917 - one parameter per click option
    data_dir: Path, workflow_type: str, input_: str | None, workflow_id: str | None, wait: bool, as_json: bool
) -> None:
    """Start a workflow of type WORKFLOW_TYPE."""
    args = _json_input(input_)
    with _require_engine(data_dir) as client:
        view = client.request("start", workflow_type=workflow_type, args=args, workflow_id=workflow_id)
        if not as_json:
            click.echo(f"started workflow {view['workflow_id']} (run {view['run_id']})")
        if wait:
            view["result"] = client.request("result", workflow_id=view["workflow_id"], reply_timeout=None)["result"]
    if as_json:
        _print_json(view)
    elif wait:
        click.echo(json.dumps(view["result"], ensure_ascii=False))


@cli.command(name="signal")
@_data_dir_option
@click.argument("workflow_id")
@click.argument("name")
@click.option("--payload", metavar="JSON", help="The signal's payload, as JSON [default: null].")
@_json_option
def signal_(data_dir: Path, workflow_id: str, name: str, payload: str | None, as_json: bool) -> None:
    """Send signal NAME to a workflow; returns once the signal is durable."""
    value = None if payload is None else _parse_json(payload, "--payload")
    with _require_engine(data_dir) as client:
        view = client.request("signal", workflow_id=_workflow_id(workflow_id), name=name, payload=value)
    if as_json:
        _print_json(view)
    else:
        click.echo(f"signal {name} sent to {view['workflow_id']} (run {view['run_id']})")


def _query_arg(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@cli.command()
@_data_dir_option
@click.argument("workflow_id")
@click.argument("name")
@click.argument("args", nargs=-1)
@_json_option
def query(data_dir: Path, workflow_id: str, name: str, args: tuple[str, ...], as_json: bool) -> None:
    """Ask a workflow's query handler NAME; each ARG is JSON, or a plain string if it is not valid JSON."""
    with _require_engine(data_dir) as client:
        arguments = [_query_arg(a) for a in args]
        wid = _workflow_id(workflow_id)
        view = client.request("query", workflow_id=wid, name=name, args=arguments, reply_timeout=60)
    _print_json(view) if as_json else click.echo(json.dumps(view["result"], ensure_ascii=False))


def _close_command(how: str, done: str) -> Callable[..., None]:
    def command(data_dir: Path, workflow_id: str, reason: str | None, as_json: bool) -> None:
        with _require_engine(data_dir) as client:
            view = client.request(how, workflow_id=_workflow_id(workflow_id), reason=reason, reply_timeout=60)
        if as_json:
            _print_json(view)
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
        _data_dir_option(
            click.argument("workflow_id")(
                click.option("--reason", help="Why; recorded in the history.")(
                    _json_option(_close_command(_how, _done))
                )
            )
        )
    )


def _closed_outcome(data_dir: Path, workflow_id: str) -> dict[str, Any] | None:
    """The outcome of a closed run read from the files (``None`` while it is open)."""
    with _readonly_store(data_dir) as store:
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
@_data_dir_option
@click.argument("workflow_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait [default: forever].")
@_json_option
def result(data_dir: Path, workflow_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for a workflow's result and print it as JSON (errors for failed, cancelled... runs)."""
    workflow_id = _workflow_id(workflow_id)
    client = _connect(data_dir)
    if client is not None:
        with client:
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
                + _how_to_start(data_dir)
            )
        view = outcome
    _print_json(view) if as_json else click.echo(json.dumps(to_jsonable(view["result"]), ensure_ascii=False))


def main() -> None:
    """Entry point of the ``aion`` console script."""
    cli()

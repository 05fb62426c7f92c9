"""The CLI's base: the ``aion`` command group, how it prints and fails, and what every command shares (the
``--data-dir`` and ``--json`` options, reaching the engine's control socket, opening the store read-only).

It owns the CLI's conventions (``error[<code>]: <message>`` and exit 1; usage errors exit 2) and no command:
commands live in the other modules of the package, one per group of commands, and never print errors their own
way.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console, RenderableType

import aion
from aion._ids import validate_workflow_id
from aion.codec import PayloadCodec, load_codec
from aion.control import ControlClient, RemoteError, connect_engine, socket_path
from aion.errors import (
    AionError,
    EngineNotRunningError,
    NotFoundError,
)
from aion.status import WorkflowStatus
from aion.store import LmdbEventStore, open_store

#: Environment variable naming the default data directory.
DATA_DIR_ENV = "AION_DATA_DIR"
#: The data directory used when neither ``--data-dir`` nor ``$AION_DATA_DIR`` is given.
DEFAULT_DATA_DIR = "aion-data"

STATUSES = [status.value for status in WorkflowStatus]


def console() -> Console:
    """A console that never cuts table cells when output goes to a pipe or a file."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1000, soft_wrap=False)


def show(renderable: RenderableType) -> None:
    console().print(renderable)


def show_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def fail(code: str, message: str) -> NoReturn:
    click.echo(f"error[{code}]: {message}", err=True)
    raise SystemExit(1)


class AionGroup(click.Group):
    """A group that prints aion errors as ``error[<code>]: <message>`` and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AionError as error:
            fail(error.code, str(error))
        except RemoteError as error:
            fail(error.code, error.message)
        except KeyboardInterrupt:  # Ctrl-C: the shell's convention, 128 + SIGINT, from every command
            click.echo("interrupted", err=True)
            raise SystemExit(INTERRUPTED) from None


#: The exit code of a command stopped by Ctrl-C (SIGINT).
INTERRUPTED = 130


@contextlib.contextmanager
def status_line(message: str) -> Iterator[None]:
    """Show ``message`` with a spinner and the time spent on stderr while the block waits, when stderr is a
    terminal (nothing otherwise: scripts read stdout only)."""
    if not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(message):
        yield


#: Environment variable naming the payload codec (``module:object``) of the data directory.
CODEC_ENV = "AION_CODEC"


def _remember_codec(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        try:
            ctx.meta["aion.codec"] = load_codec(value)
        except AionError as error:
            raise click.BadParameter(str(error), param_hint="--codec") from None


def current_codec() -> PayloadCodec | None:
    """The codec given by ``--codec`` (or ``$AION_CODEC``) to the running command, if any."""
    ctx = click.get_current_context(silent=True)
    codec = None if ctx is None else ctx.meta.get("aion.codec")
    return codec if isinstance(codec, PayloadCodec) else None


def data_dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--codec",
        metavar="MODULE:OBJECT",
        envvar=CODEC_ENV,
        show_envvar=True,
        expose_value=False,
        callback=_remember_codec,
        help="The data directory's payload codec (an aion.PayloadCodec), to read its events without an engine.",
    )(function)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DATA_DIR_ENV,
        default=DEFAULT_DATA_DIR,
        show_default=True,
        show_envvar=True,
        help="The engine's data directory.",
    )(function)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print stable JSON (see docs/cli.md).")(function)


def how_to_start(data_dir: Path) -> str:
    return f"start an engine with: aion serve --data-dir {data_dir} --module <your.workflows.module>"


def check_data_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise NotFoundError(f"data directory {str(data_dir)!r} does not exist; {how_to_start(data_dir)}")


def connect(data_dir: Path) -> ControlClient | None:
    check_data_dir(data_dir)
    return connect_engine(data_dir)


def require_engine(data_dir: Path) -> ControlClient:
    client = connect(data_dir)
    if client is None:
        raise EngineNotRunningError(
            f"no engine is running on {str(data_dir)!r} (nothing answers on {socket_path(data_dir)}); "
            + how_to_start(data_dir)
        )
    return client


@contextlib.contextmanager
def readonly_store(data_dir: Path) -> Iterator[LmdbEventStore]:
    store = open_store(data_dir, readonly=True, payload_codec=current_codec())
    try:
        yield store
    finally:
        store.close()


def parse_json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        message = f"not valid JSON ({error.msg} at column {error.colno}): {value!r}"
        raise click.BadParameter(message, param_hint=what) from None


def checked_workflow_id(value: str) -> str:
    return validate_workflow_id(value)


@click.group(cls=AionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(aion.__version__, prog_name="aion")
def cli() -> None:
    """aion: operate a durable workflow engine."""

"""The CLI's base: the ``aion`` command group, how it prints and fails, and what every command shares (the
``--data-dir`` and ``--json`` options, reaching the engine's control socket, opening the store read-only).

It owns the CLI's conventions (``error[<code>]: <message>`` and exit 1; usage errors exit 2) and no command:
commands live in the other modules of the package, one per group of commands, and never print errors their own
way.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console, RenderableType

import aion
from aion._durations import to_seconds
from aion._ids import validate_workflow_id
from aion.codec import PayloadCodec, load_codec
from aion.control import ControlClient, RemoteError, connect_engine, socket_path
from aion.errors import (
    AionError,
    EngineNotRunningError,
    InternalError,
    NotFoundError,
    OutputError,
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


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float written as the string ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``: JSON has no such numbers, and ``--json`` output must always parse."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def to_json(value: Any, *, indent: int | None = None) -> str:
    """``value`` as strict JSON (non-finite floats as strings, see :func:`finite_json`)."""
    try:
        return json.dumps(finite_json(value), indent=indent, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise OutputError(f"cannot write the value as JSON: {type(error).__name__}: {error}") from None


def show_json(value: Any) -> None:
    click.echo(to_json(value, indent=2))


class Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """A click option of seconds: a finite number, at least ``minimum``, at most 100 years."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = to_seconds(float(value), "the value")
        except (ValueError, OverflowError) as error:
            self.fail(f"{value!r} is not a number of seconds: {error}", param, ctx)
        if seconds < self.minimum:
            self.fail(f"{value!r} is less than the minimum of {self.minimum:g} seconds", param, ctx)
        return seconds


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
        except RecursionError:
            fail("invalid_argument", "the input is nested too deeply")
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as error:  # never a traceback: one line that says what broke
            fail(InternalError.code, f"unexpected {type(error).__name__}: {error}")


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
        return json.loads(value, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        message = f"not valid JSON ({error.msg} at column {error.colno}): {_short(value)}"
        raise click.BadParameter(message, param_hint=what) from None
    except RecursionError:
        raise click.BadParameter("JSON nested too deeply", param_hint=what) from None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=what) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (JSON has no NaN or infinity)")


def _short(value: str, limit: int = 200) -> str:
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def checked_workflow_id(value: str) -> str:
    return validate_workflow_id(value)


@click.group(cls=AionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(aion.__version__, prog_name="aion")
def cli() -> None:
    """aion: operate a durable workflow engine."""

"""The web UI's commands: ``aion ui`` (read-only, from the store files, no engine) and the ``--ui`` option of
``aion serve`` (:func:`ui_options`, :func:`announce`). The server itself is :mod:`aion.http`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aion.cli._base import check_data_dir, cli, data_dir_option, readonly_store
from aion.errors import InvalidArgumentError

#: Where the UI serves when ``--ui`` or ``--listen`` is given without an address.
DEFAULT_UI_ADDRESS = "127.0.0.1:8233"


def check_address(address: str, option: str) -> None:
    """Refuse a malformed ``HOST:PORT`` as a usage error naming ``option``."""
    from aion.http._server import parse_ui_address  # noqa: PLC0415 - loads the server framework

    try:
        parse_ui_address(address)
    except InvalidArgumentError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def ui_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--ui [HOST:PORT]`` and ``--ui-token`` for ``aion serve``."""
    function = click.option(
        "--ui-token",
        envvar="AION_UI_TOKEN",
        help="The UI/API token (default: a random one, printed). Needed to change anything; off loopback, to read.",
    )(function)
    return click.option(
        "--ui",
        "ui",
        is_flag=False,
        flag_value=DEFAULT_UI_ADDRESS,
        default=None,
        metavar="[HOST:PORT]",
        help=f"Serve the web UI and the HTTP API (default address {DEFAULT_UI_ADDRESS}; see docs/ui.md).",
    )(function)


def announce(server: Any) -> None:
    """Print where the UI serves, and the token (and the URL that hands it to a browser) if it was generated."""
    where = "read-only " if server.backend.read_only else ""
    click.echo(f"{where}web UI and HTTP API on {server.url}/ (API under {server.url}/api/v1)")
    if server.token_generated:
        click.echo(f"UI token: {server.token}")
        click.echo(f"open {server.url}/?token={server.token} to act from the browser")
    sys.stdout.flush()


@cli.command()
@data_dir_option
@click.option("--listen", default=DEFAULT_UI_ADDRESS, show_default=True, metavar="HOST:PORT", help="Where to serve.")
@click.option("--ui-token", envvar="AION_UI_TOKEN", help="The token (default: a random one, printed).")
def ui(data_dir: Path, listen: str, ui_token: str | None) -> None:
    """Serve the web UI read-only from the store files, without an engine (nothing can be changed)."""
    check_address(listen, "--listen")
    check_data_dir(data_dir)
    from aion.http import serve_store  # noqa: PLC0415 - loads the server framework

    stop = threading.Event()
    with readonly_store(data_dir) as store:
        server = serve_store(data_dir, store, listen, token=ui_token)
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            announce(server)
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
    click.echo("stopped")

"""The ``aion`` command line."""

from __future__ import annotations

import click

import aion


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(aion.__version__, prog_name="aion")
def cli() -> None:
    """aion: operate a durable workflow engine."""


def main() -> None:
    """Entry point of the ``aion`` console script."""
    cli()

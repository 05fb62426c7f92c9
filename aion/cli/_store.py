"""The commands that look after a data directory's store: ``check`` (verify it) and ``backup`` (a hot copy).

Both open the store read-only, beside a running engine or without one; neither changes it.
"""

from __future__ import annotations

from pathlib import Path

import click

from aion.cli._base import cli, data_dir_option, json_option, readonly_store, show_json


@cli.command()
@data_dir_option
@json_option
def check(data_dir: Path, as_json: bool) -> None:
    """Verify the store: gapless histories, one terminal per closed run, records and indexes that agree.

    Exits 1 and lists the problems if there are any."""
    with readonly_store(data_dir) as store:
        report = store.verify()
    if as_json:
        show_json({"data_dir": str(data_dir), **report.as_dict()})
    elif report.ok:
        click.echo(f"ok: {report.workflows} workflows, {report.runs} runs, {report.events} events")
    else:
        click.echo(f"{len(report.problems)} problem(s) in {data_dir}:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    if not report.ok:
        raise SystemExit(1)


@cli.command()
@data_dir_option
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@json_option
def backup(data_dir: Path, dest: Path, as_json: bool) -> None:
    """Copy the store, consistent and compacted, into DEST (a new or empty directory), also while an engine
    runs; the copy is verified. Restore: see docs/operations.md."""
    with readonly_store(data_dir) as store:
        target = store.backup(dest)
    with readonly_store(target) as copy:
        report = copy.verify()
    size = (target / "data.mdb").stat().st_size
    if as_json:
        show_json({"backup": str(target), "bytes": size, **report.as_dict()})
    else:
        click.echo(
            f"backed up {data_dir} to {target} ({size} bytes; {report.workflows} workflows, {report.events} events)"
        )
        for problem in report.problems:
            click.echo(f"  - {problem}")
    if not report.ok:
        raise SystemExit(1)

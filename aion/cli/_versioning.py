"""The commands for changing workflow code under live runs: ``replay`` (check new code against stored histories
before deploying it), ``unblock``, ``pause``, ``resume`` and ``reset`` (see docs/versioning.md).

``replay`` needs no engine and writes nothing: it opens the store read-only. The others go through the running
engine's control socket, like every command that changes a run.
"""

from __future__ import annotations

from pathlib import Path

import click

from aion.cli._base import (
    checked_workflow_id,
    cli,
    data_dir_option,
    json_option,
    readonly_store,
    require_engine,
    show_json,
)
from aion.cli._engine import discover
from aion.testing._replay_store import replay_histories, stored_histories
from aion.testing._replayer import load_history


@cli.command()
@data_dir_option
@click.option("--module", "-m", "modules", multiple=True, required=True, help="Module with workflows (repeatable).")
@click.option(
    "--history",
    "history_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Replay this exported history (aion history ID --json) instead of the store's.",
)
@click.option(
    "--closed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also the last N closed runs of each type.",
)
@click.option("--processes", type=click.IntRange(min=1), help="Worker processes [default: the number of CPUs].")
@json_option
def replay(  # noqa: PLR0917 - one parameter per click option
    data_dir: Path,
    modules: tuple[str, ...],
    history_file: Path | None,
    closed: int,
    processes: int | None,
    as_json: bool,
) -> None:
    """Replay the workflow code of the modules against stored histories; exit 1 if any run does not fit.

    Without --history: every running, blocked and paused run of the data directory (and with --closed N the last
    N closed runs of each type), read-only, without an engine. One line per divergence: workflow id, run, seq,
    what the history has, what the code does.
    """
    workflows, _ = discover(modules)
    if history_file is not None:
        histories = [load_history(history_file)]
    else:
        with readonly_store(data_dir) as store:
            histories = stored_histories(store, closed=closed)
    divergences = replay_histories(workflows, histories, processes=processes)
    if as_json:
        show_json(
            {
                "replayed": len(histories),
                "divergences": [
                    {
                        "workflow_id": d.workflow_id,
                        "run_id": d.run_id,
                        "seq": d.seq,
                        "expected": d.expected,
                        "found": d.found,
                    }
                    for d in divergences
                ],
            }
        )
    else:
        for divergence in divergences:
            click.echo(divergence.line())
        fit = len(histories) - len(divergences)
        click.echo(f"{len(histories)} run(s) replayed: {fit} fit, {len(divergences)} diverge", err=bool(divergences))
    if divergences:
        raise SystemExit(1)


@cli.command()
@data_dir_option
@click.argument("workflow_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every blocked run.")
@json_option
def unblock(data_dir: Path, workflow_id: str | None, all_: bool, as_json: bool) -> None:
    """Try a blocked run again now (or every blocked run with --all); it continues if the engine's code fits."""
    if all_ == (workflow_id is not None):
        raise click.UsageError("give a WORKFLOW_ID or --all (not both)")
    with require_engine(data_dir) as client:
        if all_:
            view = client.request("unblock", all=True, reply_timeout=60)
        else:
            view = client.request("unblock", workflow_id=checked_workflow_id(str(workflow_id)), reply_timeout=60)
    if as_json:
        show_json(view)
    else:
        click.echo(f"{view['retried']} blocked run(s) tried again (aion list --status blocked shows what is left)")


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.option("--reason", help="Why; recorded in the history.")
@json_option
def pause(data_dir: Path, workflow_id: str, reason: str | None, as_json: bool) -> None:
    """Pause a run: nothing new is dispatched, arrivals are recorded and wait for ``aion resume``."""
    with require_engine(data_dir) as client:
        view = client.request("pause", workflow_id=checked_workflow_id(workflow_id), reason=reason, reply_timeout=60)
    if as_json:
        show_json(view)
    else:
        done = "paused" if view["took_effect"] else "was already paused:"
        click.echo(f"{done} {view['workflow_id']} (run {view['run_id']})")


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@json_option
def resume(data_dir: Path, workflow_id: str, as_json: bool) -> None:
    """Resume a paused run: what waited is delivered and dispatched."""
    with require_engine(data_dir) as client:
        view = client.request("resume", workflow_id=checked_workflow_id(workflow_id), reply_timeout=60)
    if as_json:
        show_json(view)
    else:
        done = "resumed" if view["took_effect"] else "was not paused:"
        click.echo(f"{done} {view['workflow_id']} (run {view['run_id']})")


@cli.command()
@data_dir_option
@click.argument("workflow_id")
@click.option(
    "--to-seq",
    type=click.IntRange(min=1),
    help="Keep the history up to this seq [default: the last event before the run closed or became blocked].",
)
@click.option("--reason", required=True, help="Why; recorded in the history.")
@json_option
def reset(data_dir: Path, workflow_id: str, to_seq: int | None, reason: str, as_json: bool) -> None:
    """Start a new run from a copy of the current run's history up to --to-seq, with the engine's code."""
    with require_engine(data_dir) as client:
        view = client.request(
            "reset", workflow_id=checked_workflow_id(workflow_id), to_seq=to_seq, reason=reason, reply_timeout=60
        )
    if as_json:
        show_json(view)
    else:
        click.echo(f"reset {view['workflow_id']}: run {view['old_run_id']} -> new run {view['run_id']}")

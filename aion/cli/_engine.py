"""The commands about the engine itself: ``serve`` (run one in the foreground), ``tree`` (its live supervision
tree) and ``demo``.

It owns discovering the workflows and activities of ``--module`` modules. It never reads the store files.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

import aion
from aion._definitions import activity_definition, workflow_definition
from aion.cli._base import (
    INTERRUPTED,
    Seconds,
    cli,
    console,
    current_codec,
    data_dir_option,
    json_option,
    require_engine,
    show,
    show_json,
    to_json,
)
from aion.cli._queue_option import QueueConfig, TaskQueueOption, declared_queues
from aion.cli._ui import announce, check_address, ui_options
from aion.control import socket_path
from aion.control._render import tree_table
from aion.engine._engine_settings import MAX_COMMIT_HOLD
from aion.engine._placement import AUTO, EngineCpu
from aion.engine._residency import DEFAULT_EVICT_IDLE_AFTER, DEFAULT_MAX_RESIDENT
from aion.errors import (
    EngineStoppedError,
    InvalidArgumentError,
    RegistrationError,
)
from aion.observability import configure_logging, parse_address
from aion.observability._logging import FORMATS
from aion.recorder import DEFAULT_HOLD


@cli.command()
def demo() -> None:
    """Run the self-contained demo: a workflow survives the SIGKILL of its process."""
    from aion import demo as demo_module  # noqa: PLC0415 - imported on use: it defines workflows

    demo_module.main()


def dump_every_thread(_signum: int, _frame: object) -> None:
    """Write every thread's stack to stderr (the SIGUSR2 handler of ``aion serve``)."""
    faulthandler.dump_traceback(sys.stderr, all_threads=True)


def discover(modules: tuple[str, ...]) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
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


class EngineCpuOption(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click stubs
    """``--engine-cpu``: ``auto``, ``none`` or a CPU number (what ``Engine(engine_cpu=...)`` takes)."""

    name = "auto|none|CPU"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> EngineCpu:
        text = str(value).strip().lower()
        if text == AUTO:
            return AUTO
        if text == "none":
            return None
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is not 'auto', 'none' or a CPU number", param, ctx)


@cli.command()
@data_dir_option
@click.option("--module", "-m", "modules", multiple=True, required=True, help="Module with workflows (repeatable).")
@click.option(
    "--activity-workers",
    type=click.IntRange(min=1),
    help="Activity worker processes [default: one per CPU, at least 8].",
)
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
@click.option(
    "--evict-idle-after",
    type=click.FloatRange(min=0, min_open=True, max=3.15e9),
    default=DEFAULT_EVICT_IDLE_AFTER,
    show_default=True,
    help="Seconds a parked run stays inactive before it gives up its process even with slots to spare.",
)
@click.option(
    "--commit-hold",
    type=click.FloatRange(min=0, max=MAX_COMMIT_HOLD),
    default=DEFAULT_HOLD,
    show_default=True,
    help="Seconds a run's own step may wait to share a caller's commit while callers' appends stream in (0: never).",
)
@click.option(
    "--engine-cpu",
    type=EngineCpuOption(),
    default=AUTO,
    show_default=True,
    help="The CPU the engine's threads share (workflow processes run on the others): auto, none, or a CPU number.",
)
@click.option(
    "--activities-on-engine-cpu",
    is_flag=True,
    help="Let the default queue's activity workers run on the engine's CPU too (CPU-bound activities, few CPUs).",
)
@click.option(
    "--task-queue",
    "task_queues",
    type=TaskQueueOption(),
    multiple=True,
    help="Declare a task queue (repeatable): NAME[:OPTION,...]. A local queue takes workers=N, max-concurrent=N, "
    "rate-limit=PER_SECOND, engine-cpu; the option ray makes it a Ray queue, which takes address=ADDRESS, num-cpus=N, "
    "num-gpus=N, resource.NAME=AMOUNT, max-concurrent=N, rate-limit=PER_SECOND. E.g. --task-queue "
    "mail:workers=2,rate-limit=5 --task-queue gpu:ray,address=auto,num-gpus=1.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Level of the aion and supervisors loggers (to stderr).",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text, or json: one JSON object per line with the structured fields.",
)
@click.option("--metrics", "metrics", metavar="HOST:PORT", help="Serve Prometheus /metrics on HOST:PORT.")
@click.option(
    "--search-attribute",
    "search_attributes",
    metavar="NAME=TYPE",
    multiple=True,
    help="Declare a search attribute (repeatable); TYPE: keyword, text, int, float, bool, datetime, keyword_list.",
)
@click.option(
    "--on-code-mismatch",
    type=click.Choice(["block", "fail"]),
    default="block",
    show_default=True,
    help="What a run whose code does not fit it becomes (see docs/versioning.md).",
)
@ui_options
def serve(
    *,
    data_dir: Path,
    modules: tuple[str, ...],
    activity_workers: int | None,
    warm_pool: int,
    max_restarts: int,
    max_resident: int,
    evict_idle_after: float = DEFAULT_EVICT_IDLE_AFTER,
    commit_hold: float = DEFAULT_HOLD,
    engine_cpu: EngineCpu = AUTO,
    activities_on_engine_cpu: bool = False,
    task_queues: tuple[tuple[str, QueueConfig], ...] = (),
    log_level: str = "INFO",
    log_format: str = "text",
    metrics: str | None = None,
    search_attributes: tuple[str, ...] = (),
    on_code_mismatch: Literal["block", "fail"] = "block",
    ui: str | None = None,
    ui_token: str | None = None,
) -> None:
    """Run an engine in the foreground with the workflows and activities of the modules.

    Stops cleanly (finishing history writes) on SIGINT or SIGTERM.
    """
    workflows, activities = discover(modules)
    if not workflows:
        raise click.BadParameter(f"no @workflow.defn functions in {', '.join(modules)}", param_hint="--module")
    if metrics is not None:
        try:
            parse_address(metrics)
        except InvalidArgumentError as error:
            raise click.BadParameter(str(error), param_hint="--metrics") from None
    if ui is not None:
        check_address(ui, "--ui")
    try:
        declared = declared_queues(task_queues, activities_on_engine_cpu=activities_on_engine_cpu)
    except InvalidArgumentError as error:
        raise click.BadParameter(str(error), param_hint="--task-queue") from None
    configure_logging(log_level, log_format)
    engine = aion.Engine(
        data_dir,
        workflows=workflows,
        activities=activities,
        activity_workers=activity_workers,
        warm_pool=warm_pool,
        max_restarts=max_restarts,
        max_resident=max_resident,
        evict_idle_after=evict_idle_after,
        commit_hold=commit_hold,
        engine_cpu=engine_cpu,
        task_queues=declared,
        metrics=metrics,
        search_attributes=dict(item.partition("=")[::2] for item in search_attributes),
        on_code_mismatch=on_code_mismatch,
        payload_codec=current_codec(),
    )
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(received: int, _: object) -> None:
        stopped_by.append(received)
        stop.set()

    engine.start()
    ui_server = None
    try:
        if ui is not None:
            from aion.http import serve_engine  # noqa: PLC0415 - loads the server framework only with --ui

            ui_server = serve_engine(engine, ui, token=ui_token)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)
        # SIGUSR2 writes every thread's stack to stderr: what a stop that hangs is waiting on. The main thread
        # writes it from a Python handler, holding the GIL, so no other thread moves its frames mid-dump;
        # faulthandler.register dumps from whichever thread the kernel picks, without the GIL, and could print
        # a frame being popped as garbage.
        signal.signal(signal.SIGUSR2, dump_every_thread)
        names = sorted(engine.registry.workflows)
        click.echo(
            f"aion engine (pid {os.getpid()}) serving {data_dir} with workflows {', '.join(names)}; "
            f"control socket {socket_path(data_dir)}",
        )
        if engine.metrics_address is not None:
            host, port = engine.metrics_address
            click.echo(f"metrics on http://{host}:{port}/metrics")
        if ui_server is not None:
            announce(ui_server)
        sys.stdout.flush()
        while not stop.wait(0.5):
            if engine.stopped_reason is not None:  # it stopped by itself after a fault: say why, exit non-zero
                break
        if engine.stopped_reason is None:
            click.echo("stopping")
    finally:
        if ui_server is not None:
            ui_server.stop()  # before the engine: its requests end while the engine still answers
        engine.stop()
    if engine.stopped_reason is not None:
        raise EngineStoppedError(engine.stopped_reason)
    click.echo("stopped")
    if stopped_by[:1] == [signal.SIGINT]:
        raise SystemExit(INTERRUPTED)  # a clean stop, by Ctrl-C: 130 like every command


@cli.command()
@data_dir_option
@click.option("--watch", is_flag=True, help="Refresh in place until interrupted.")
@click.option("--interval", type=Seconds(minimum=0.1), default=1.0, show_default=True, help="Refresh period.")
@json_option
def tree(data_dir: Path, watch: bool, interval: float, as_json: bool) -> None:
    """The live supervision tree: services, workflow supervisors and workflow processes."""
    with require_engine(data_dir) as client:
        if not watch:
            view = client.request("tree")
            show_json(view) if as_json else show(tree_table(view))
            return
        if as_json:
            while True:
                click.echo(to_json(client.request("tree")))
                time.sleep(interval)
        from rich.live import Live  # noqa: PLC0415 - only for --watch

        first = tree_table(client.request("tree"))
        with Live(first, console=console()) as live:
            while True:
                time.sleep(interval)
                live.update(tree_table(client.request("tree")))

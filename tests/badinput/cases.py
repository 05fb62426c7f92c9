"""The bad inputs tried against aion, one list: each has an id, where it is given, what it is, and the error
class and code it must raise. ``docs/errors.md`` ("Bad inputs and their codes") is this list as a table;
``test_table_matches_the_docs`` keeps the two equal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aion import Engine, LocalQueue
from tests.badinput import flows

INVALID = ("InvalidArgumentError", "invalid_argument")
PAYLOAD = ("PayloadError", "payload_error")
USAGE = ("usage error (exit 2)", "usage")
CONTROL = ("ControlError", "control_error")


@dataclass(frozen=True)
class Case:
    """One bad input: ``action`` makes it (its meaning depends on ``where``)."""

    id: str
    where: str  # api, workflow, cli or socket
    input: str
    error: str
    code: str
    action: Any = field(default=None, compare=False)


@dataclass
class Ctx:
    """What the API cases act on: the running engine, its data dir, a running and a closed workflow."""

    engine: Engine
    tmp: Path
    running: str
    closed: str


def api(case_id: str, text: str, expected: tuple[str, str], action: Callable[[Ctx], Any]) -> Case:
    return Case(case_id, "api", text, *expected, action=action)


def _file(ctx: Ctx) -> Path:
    path = ctx.tmp / "a-file"
    path.write_text("not a directory")
    return path


API_CASES = [
    api("engine-data-dir-empty", 'Engine("")', INVALID, lambda c: Engine("")),
    api("engine-data-dir-int", "Engine(5)", INVALID, lambda c: Engine(5)),  # type: ignore[arg-type]
    api("engine-data-dir-file", "Engine(<a regular file>)", INVALID, lambda c: Engine(_file(c))),
    api("engine-data-dir-nul", 'Engine("a\\0b")', INVALID, lambda c: Engine("a\0b")),
    api("engine-warm-pool-negative", "warm_pool=-1", INVALID, lambda c: Engine(c.tmp, warm_pool=-1)),
    api("engine-warm-pool-float", "warm_pool=1.5", INVALID, lambda c: Engine(c.tmp, warm_pool=1.5)),  # type: ignore[arg-type]
    api("engine-warm-pool-huge", "warm_pool=10**9", INVALID, lambda c: Engine(c.tmp, warm_pool=10**9)),
    api("engine-workers-zero", "activity_workers=0", INVALID, lambda c: Engine(c.tmp, activity_workers=0)),
    api("engine-workers-bool", "activity_workers=True", INVALID, lambda c: Engine(c.tmp, activity_workers=True)),
    api("engine-workers-string", 'activity_workers="4"', INVALID, lambda c: Engine(c.tmp, activity_workers="4")),  # type: ignore[arg-type]
    api("engine-max-seconds-nan", "max_seconds=NaN", INVALID, lambda c: Engine(c.tmp, max_seconds=float("nan"))),
    api("engine-max-seconds-inf", "max_seconds=inf", INVALID, lambda c: Engine(c.tmp, max_seconds=float("inf"))),
    api("engine-max-seconds-string", 'max_seconds="60"', INVALID, lambda c: Engine(c.tmp, max_seconds="60")),  # type: ignore[arg-type]
    api("engine-max-restarts-negative", "max_restarts=-1", INVALID, lambda c: Engine(c.tmp, max_restarts=-1)),
    api("engine-max-resident-zero", "max_resident=0", INVALID, lambda c: Engine(c.tmp, max_resident=0)),
    api("engine-evict-idle-zero", "evict_idle_after=0", INVALID, lambda c: Engine(c.tmp, evict_idle_after=0)),
    api(
        "engine-evict-idle-nan",
        "evict_idle_after=NaN",
        INVALID,
        lambda c: Engine(c.tmp, evict_idle_after=float("nan")),
    ),
    api(
        "engine-evict-idle-string",
        'evict_idle_after="60"',
        INVALID,
        lambda c: Engine(c.tmp, evict_idle_after="60"),  # type: ignore[arg-type]
    ),
    api("engine-commit-hold-negative", "commit_hold=-1", INVALID, lambda c: Engine(c.tmp, commit_hold=-1)),
    api("engine-commit-hold-long", "commit_hold=0.5", INVALID, lambda c: Engine(c.tmp, commit_hold=0.5)),
    api(
        "engine-commit-hold-string",
        'commit_hold="2ms"',
        INVALID,
        lambda c: Engine(c.tmp, commit_hold="2ms"),  # type: ignore[arg-type]
    ),
    api(
        "engine-cpu-string",
        'engine_cpu="fast"',
        INVALID,
        lambda c: Engine(c.tmp, engine_cpu="fast"),  # type: ignore[arg-type]
    ),
    api("engine-cpu-negative", "engine_cpu=-1", INVALID, lambda c: Engine(c.tmp, engine_cpu=-1)),
    api("engine-cpu-not-allowed", "engine_cpu=4096", INVALID, lambda c: Engine(c.tmp, engine_cpu=4096)),
    api(
        "queue-use-engine-cpu-string",
        'LocalQueue(use_engine_cpu="yes")',
        INVALID,
        lambda c: LocalQueue(use_engine_cpu="yes"),  # type: ignore[arg-type]
    ),
    api(
        "engine-cancel-grace-negative",
        "activity_cancel_grace=-1",
        INVALID,
        lambda c: Engine(c.tmp, activity_cancel_grace=-1),
    ),
    api("engine-clock-object", "clock=object()", INVALID, lambda c: Engine(c.tmp, clock=object())),  # type: ignore[arg-type]
    api("engine-workflows-int", "workflows=5", INVALID, lambda c: Engine(c.tmp, workflows=5)),  # type: ignore[arg-type]
    api(
        "engine-workflow-undecorated",
        "workflows=[a plain function]",
        ("RegistrationError", "registration_error"),
        lambda c: Engine(c.tmp, workflows=[len]),
    ),
    api(
        "start-unknown-type",
        'start_workflow("nope")',
        ("UnknownWorkflowTypeError", "unknown_workflow_type"),
        lambda c: c.engine.start_workflow("nope"),
    ),
    api("start-id-empty", 'workflow_id=""', INVALID, lambda c: c.engine.start_workflow(flows.waiter, workflow_id="")),
    api("start-id-int", "workflow_id=5", INVALID, lambda c: c.engine.start_workflow(flows.waiter, workflow_id=5)),  # type: ignore[arg-type]
    api(
        "start-id-too-long",
        "workflow_id of 300 characters",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, workflow_id="w" * 300),
    ),
    api("start-args-set", "an argument {1, 2}", PAYLOAD, lambda c: c.engine.start_workflow(flows.attempt, {1, 2})),
    api(
        "start-args-deep",
        "an argument nested 200 lists deep",
        PAYLOAD,
        lambda c: c.engine.start_workflow(flows.attempt, _deep(200)),
    ),
    api(
        "start-args-too-large",
        "an argument of 3 MB",
        ("PayloadTooLargeError", "payload_too_large"),
        lambda c: c.engine.start_workflow(flows.attempt, "x" * 3_000_000),
    ),
    api(
        "start-search-attributes-list",
        "search_attributes=[1]",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, search_attributes=[1]),  # type: ignore[arg-type]
    ),
    api(
        "start-execution-timeout-nan",
        "execution_timeout=NaN",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, execution_timeout=float("nan")),
    ),
    api(
        "start-run-timeout-1e12",
        "run_timeout=1e12",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, run_timeout=1e12),
    ),
    api(
        "start-run-timeout-3e6-days",
        "run_timeout=timedelta(days=3e6)",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, run_timeout=timedelta(days=3e6)),
    ),
    api(
        "start-run-timeout-zero",
        "run_timeout=0",
        INVALID,
        lambda c: c.engine.start_workflow(flows.waiter, run_timeout=0),
    ),
    api(
        "start-already-running",
        "the id of a running workflow",
        ("WorkflowAlreadyStartedError", "already_started"),
        lambda c: c.engine.start_workflow(flows.waiter, workflow_id=c.running),
    ),
    api(
        "signal-with-start-name-empty",
        'signal_with_start(..., signal="")',
        INVALID,
        lambda c: c.engine.signal_with_start(flows.waiter, workflow_id="sws", signal=""),
    ),
    api("signal-name-empty", 'signal("")', INVALID, lambda c: c.engine.get_workflow(c.running).signal("")),
    api(
        "signal-payload-object",
        "signal payload object()",
        PAYLOAD,
        lambda c: c.engine.get_workflow(c.running).signal("go", object()),
    ),
    api(
        "signal-closed",
        "signal to a closed workflow",
        ("WorkflowNotRunningError", "not_running"),
        lambda c: c.engine.get_workflow(c.closed).signal("go"),
    ),
    api(
        "query-timeout-nan",
        "query(timeout=NaN)",
        INVALID,
        lambda c: c.engine.get_workflow(c.running).query("slow", timeout=float("nan")),
    ),
    api(
        "query-timeout-negative",
        "query(timeout=-1)",
        INVALID,
        lambda c: c.engine.get_workflow(c.running).query("slow", timeout=-1),
    ),
    api("query-name-int", "query(5)", INVALID, lambda c: c.engine.get_workflow(c.running).query(5)),  # type: ignore[arg-type]
    api(
        "query-unknown-name",
        "a query name the workflow has no handler for",
        ("QueryError", "query_error"),
        lambda c: c.engine.get_workflow(c.running).query("nope"),
    ),
    api(
        "query-too-slow",
        "query(timeout=0.2) of a handler that takes 1 s",
        ("QueryTimeoutError", "query_timeout"),
        lambda c: c.engine.get_workflow(c.running).query("slow", timeout=0.2),
    ),
    api(
        "result-timeout-nan",
        "result(timeout=NaN)",
        INVALID,
        lambda c: c.engine.get_workflow(c.running).result(timeout=float("nan")),
    ),
    api(
        "cancel-reason-int",
        "cancel(reason=5)",
        INVALID,
        lambda c: c.engine.get_workflow(c.running).cancel(reason=5),  # type: ignore[arg-type]
    ),
    api(
        "terminate-reason-list",
        "terminate(reason=[1])",
        INVALID,
        lambda c: c.engine.get_workflow(c.running).terminate(reason=[1]),  # type: ignore[arg-type]
    ),
    api(
        "get-workflow-unknown",
        "get_workflow of an id never started",
        ("WorkflowNotFoundError", "not_found"),
        lambda c: c.engine.get_workflow("never-started"),
    ),
    api(
        "list-status-unknown",
        'list_workflows(status="sleeping")',
        INVALID,
        lambda c: c.engine.list_workflows(status="sleeping"),
    ),
    api("list-limit-negative", "list_workflows(limit=-1)", INVALID, lambda c: c.engine.list_workflows(limit=-1)),
]

_WORKFLOW_ERRORS = {
    "activity-args-object": PAYLOAD,
    "signal-external-payload-set": PAYLOAD,
    "continue-as-new-object": PAYLOAD,
}

WORKFLOW_CASES = [
    Case(f"workflow-{name}", "workflow", name, *_WORKFLOW_ERRORS.get(name, INVALID), action=name)
    for name in flows.BAD_CALLS
]


def cli(case_id: str, expected: tuple[str, str], *args: str, text: str | None = None) -> Case:
    shown = text or " ".join(arg if len(arg) <= 40 else f"{arg[:20]}...({len(arg)} characters)" for arg in args)
    return Case(case_id, "cli", f"aion {shown}", *expected, action=args)


CLI_CASES = [
    cli("cli-start-input-invalid-json", USAGE, "start", "attempt", "--input", "{"),
    cli("cli-start-input-nan", USAGE, "start", "attempt", "--input", "NaN"),
    cli("cli-start-input-infinity", USAGE, "start", "attempt", "--input", "[Infinity]"),
    cli("cli-start-input-nested-50000", USAGE, "start", "attempt", "--input", "[" * 50000 + "]" * 50000),
    cli("cli-start-input-nested-200", PAYLOAD, "start", "attempt", "--input", "[" * 200 + "]" * 200),
    cli("cli-start-unknown-type", ("UnknownWorkflowTypeError", "unknown_workflow_type"), "start", "nope"),
    cli("cli-start-id-control-char", INVALID, "start", "waiter", "--id", "a\tb"),
    cli("cli-result-timeout-nan", USAGE, "result", "RUNNING", "--timeout", "nan"),
    cli("cli-result-timeout-inf", USAGE, "result", "RUNNING", "--timeout", "inf"),
    cli("cli-result-timeout-negative", USAGE, "result", "RUNNING", "--timeout", "-1"),
    cli("cli-result-timeout-1e300", USAGE, "result", "RUNNING", "--timeout", "1e300"),
    cli("cli-tree-interval-1e300", USAGE, "tree", "--watch", "--interval", "1e300"),
    cli("cli-tree-interval-nan", USAGE, "tree", "--watch", "--interval", "nan"),
    cli("cli-list-status-unknown", USAGE, "list", "--status", "sleeping"),
    cli("cli-list-limit-zero", USAGE, "list", "--limit", "0"),
    cli("cli-list-limit-huge", USAGE, "list", "--limit", "1" + "0" * 30),
    cli("cli-describe-id-newline", INVALID, "describe", "a\nb"),
    cli("cli-signal-payload-invalid", USAGE, "signal", "RUNNING", "go", "--payload", "{nope"),
    cli("cli-signal-unknown-workflow", ("WorkflowNotFoundError", "not_found"), "signal", "never-started", "go"),
    cli("cli-query-unknown-name", ("QueryError", "query_error"), "query", "RUNNING", "nope"),
    cli("cli-query-args-nested", INVALID, "query", "RUNNING", "slow", "[" * 50000 + "]" * 50000),
    cli(
        "cli-query-args-1200-kb",
        CONTROL,
        "query",
        "RUNNING",
        "slow",
        *["x" * 120_000] * 10,
        text="query RUNNING slow <10 arguments of 120 000 characters: a request over the 1 MiB frame limit>",
    ),
    cli("cli-history-unknown", ("WorkflowNotFoundError", "not_found"), "history", "never-started"),
    cli("cli-serve-warm-pool-huge", INVALID, "serve", "--warm-pool", "100000000", "--module", "tests.badinput.flows"),
]


def sock(case_id: str, text: str, expected: tuple[str, str], frame: Any) -> Case:
    return Case(case_id, "socket", text, *expected, action=frame)


SOCKET_CASES = [
    sock("socket-history-wait-nan", '{"op": "history", "wait": NaN}', INVALID, {"op": "history", "wait": float("nan")}),
    sock("socket-history-wait-inf", '{"op": "history", "wait": inf}', INVALID, {"op": "history", "wait": float("inf")}),
    sock("socket-history-wait-negative", '{"op": "history", "wait": -1}', INVALID, {"op": "history", "wait": -1}),
    sock(
        "socket-history-after-2e64",
        '{"op": "history", "after_seq": 2**64-1}',
        INVALID,
        {"op": "history", "after_seq": 2**64 - 1},
    ),
    sock(
        "socket-history-after-1e300",
        '{"op": "history", "after_seq": 1e300}',
        INVALID,
        {"op": "history", "after_seq": 1e300},
    ),
    sock(
        "socket-result-timeout-nan",
        '{"op": "result", "timeout": NaN}',
        INVALID,
        {"op": "result", "timeout": float("nan")},
    ),
    sock("socket-list-limit-string", '{"op": "list", "limit": "5"}', INVALID, {"op": "list", "limit": "5"}),
    sock("socket-list-limit-bool", '{"op": "list", "limit": true}', INVALID, {"op": "list", "limit": True}),
    sock("socket-op-unknown", '{"op": "explode"}', INVALID, {"op": "explode"}),
    sock("socket-op-int", '{"op": 5}', INVALID, {"op": 5}),
    sock(
        "socket-start-args-map",
        '{"op": "start", "args": {}}',
        INVALID,
        {"op": "start", "workflow_type": "waiter", "args": {}},
    ),
    sock(
        "socket-start-type-empty", '{"op": "start", "workflow_type": ""}', INVALID, {"op": "start", "workflow_type": ""}
    ),
    sock("socket-signal-name-int", '{"op": "signal", "name": 5}', INVALID, {"op": "signal", "name": 5}),
    sock("socket-frame-not-msgpack", "a frame of bytes that are not msgpack", CONTROL, b"\xc1\xc1\xc1"),
    sock("socket-frame-not-map", "a frame holding a list", CONTROL, b"\x91\x01"),
    sock("socket-frame-length-2gb", "a frame header announcing 2 GB", CONTROL, "huge-header"),
    sock("socket-frame-dripped", "a frame dripped slower than the frame deadline", CONTROL, "drip"),
]


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


CASES = API_CASES + WORKFLOW_CASES + CLI_CASES + SOCKET_CASES


def table_rows() -> list[str]:
    """The rows of the docs table, in list order."""
    rows = []
    for case in CASES:
        text = case.input.replace("|", "\\|").replace("\n", "\\n").replace("\t", "\\t")
        rows.append(f"| `{case.id}` | {case.where} | {text} | `{case.error}` | `{case.code}` |")
    return rows

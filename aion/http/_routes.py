"""The HTTP JSON API's routes, as data: the server is built from this table and the OpenAPI description is
written from it, so neither can list a route the other lacks.

Each route names the backend operation it runs (:class:`~aion.http._backend.Backend`), the path parameters, the
query parameters (with the numeric ones parsed) and the fields of its JSON body.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["API_PREFIX", "NUMERIC", "ROUTES", "STREAMS", "ApiRoute"]

API_PREFIX = "/api/v1"

#: Query parameters that are numbers.
NUMERIC = frozenset({"after_seq", "wait", "timeout", "page_size", "limit", "to_seq"})

_W = "/workflows/{workflow_id}"
_S = "/schedules/{schedule_id}"


@dataclass(frozen=True)
class ApiRoute:
    """One route of the API: ``method`` and ``path`` (under :data:`API_PREFIX`) run ``op``."""

    method: str
    path: str
    op: str
    summary: str
    query: tuple[str, ...] = ()
    body: tuple[str, ...] = ()

    @property
    def changes_state(self) -> bool:
        """A POST: it needs the token and the CSRF guard, and is refused read-only."""
        return self.method == "POST"


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/info", "ping", "The server: engine pid, data directory, aion version, read-only or not."),
    ApiRoute(
        "GET",
        "/workflows",
        "list",
        "Current runs: newest first filtered by status/workflow_type/limit, or one page of a visibility query.",
        query=("status", "workflow_type", "limit", "query", "page_size", "next_page_token"),
    ),
    ApiRoute(
        "GET",
        "/count",
        "count",
        "How many runs match a visibility query (by status with GROUP BY Status).",
        query=("query",),
    ),
    ApiRoute(
        "POST",
        "/workflows",
        "start_workflow",
        "Start a workflow with every start option; answers once WorkflowStarted is durable.",
        body=(
            "workflow_type",
            "args",
            "workflow_id",
            "search_attributes",
            "memo",
            "execution_timeout",
            "run_timeout",
            "version",
        ),
    ),
    ApiRoute(
        "POST",
        "/signal-with-start",
        "signal_with_start",
        "Signal a workflow, starting it first if it is not running (one transaction).",
        body=(
            "workflow_type",
            "args",
            "workflow_id",
            "signal",
            "payload",
            "search_attributes",
            "execution_timeout",
            "run_timeout",
        ),
    ),
    ApiRoute("POST", "/unblock-all", "unblock", "Try every blocked run again.", body=("all",)),
    ApiRoute("GET", _W, "describe", "The current run in detail: status, result or failure, waits, pending work."),
    ApiRoute("GET", _W + "/runs", "runs", "Every run of the workflow (continue-as-new chain, resets), oldest first."),
    ApiRoute(
        "GET",
        _W + "/history",
        "history",
        "Events after after_seq of the current run (or run_id); with wait > 0, a long-poll for new ones (10 s max).",
        query=("after_seq", "wait", "run_id"),
    ),
    ApiRoute(
        "GET",
        _W + "/result",
        "result",
        "Long-poll for the result (timeout seconds, 30 at most): result_timeout (408) if still open, ask again.",
        query=("timeout",),
    ),
    ApiRoute("POST", _W + "/signal", "signal", "Send a signal; answers once it is durable.", body=("name", "payload")),
    ApiRoute("POST", _W + "/query", "query", "Ask the live workflow a query.", body=("name", "args")),
    ApiRoute("POST", _W + "/update", "update", "Apply an update; its result once durable.", body=("name", "args")),
    ApiRoute("POST", _W + "/cancel", "cancel", "Request cancellation of the current run.", body=("reason",)),
    ApiRoute("POST", _W + "/terminate", "terminate", "Terminate the current run.", body=("reason",)),
    ApiRoute("POST", _W + "/reset", "reset", "Reset the current run to to_seq (a new run).", body=("to_seq", "reason")),
    ApiRoute("POST", _W + "/pause", "pause", "Pause the current run.", body=("reason",)),
    ApiRoute("POST", _W + "/resume", "resume", "Resume the paused run."),
    ApiRoute("POST", _W + "/unblock", "unblock", "Try the blocked run again."),
    ApiRoute("GET", "/schedules", "schedule_list", "Every schedule: spec, next fire times, recent actions."),
    ApiRoute(
        "POST",
        "/schedules",
        "schedule_create",
        "Create a schedule.",
        body=("schedule_id", "workflow_type", "args", "spec", "policy", "paused", "note"),
    ),
    ApiRoute("GET", _S, "schedule_describe", "One schedule."),
    ApiRoute("POST", _S + "/pause", "schedule_pause", "Pause a schedule.", body=("note",)),
    ApiRoute("POST", _S + "/unpause", "schedule_unpause", "Unpause a schedule.", body=("note",)),
    ApiRoute("POST", _S + "/trigger", "schedule_trigger", "Fire a schedule now.", body=("overlap",)),
    ApiRoute(
        "POST",
        _S + "/backfill",
        "schedule_backfill",
        "Fire every time of the spec in [start, end].",
        body=("start", "end", "overlap"),
    ),
    ApiRoute("POST", _S + "/delete", "schedule_delete", "Delete a schedule."),
    ApiRoute("GET", "/tree", "tree", "The live supervision tree (pids, restarts, last exit, RSS/CPU) and residency."),
)

#: Server-sent event streams (``text/event-stream``): path -> summary.
STREAMS: dict[str, str] = {
    "/tree/stream": "The supervision tree as server-sent events: a `tree` event whenever it changes.",
    _W + "/history/stream": "The history as server-sent events: `event` per event after after_seq, then `closed`.",
}

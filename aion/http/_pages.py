"""The UI's pages, rendered on the server from the backend's operations (the answers of the JSON API); the
script ``static/ui.js`` then keeps them live through the same API (statuses, the history, the tree's stream)
and sends the actions. No template engine and no build step: every value goes through :func:`esc`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from aion.errors import AionError
from aion.http._backend import Backend
from aion.status import WorkflowStatus

__all__ = ["error_page", "schedules_page", "tree_page", "workflow_page", "workflows_page"]

#: Characters of a payload shown before it is cut (the whole value is in the expandable part).
PREVIEW = 120
STATUSES = [status.value for status in WorkflowStatus]
#: Runs on one page of the Workflows page (``?page_size=`` changes it).
PAGE_SIZE = 50


def esc(value: Any) -> str:
    """``value`` as escaped HTML text (``""`` for ``None``)."""
    return "" if value is None else escape(str(value), quote=True)


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=repr)


def workflow_href(workflow_id: str) -> str:
    """The URL of a workflow's page."""
    return "/workflows/" + quote(workflow_id, safe="")


def _layout(title: str, page: str, backend: Backend, body: str, attrs: str = "") -> str:
    mode = '<span class="mode">read-only (aion ui)</span>' if backend.read_only else ""
    nav = "".join(
        f'<a href="{href}"{" class=current" if name == page else ""}>{label}</a>'
        for name, href, label in (
            ("workflows", "/", "Workflows"),
            ("tree", "/tree", "Supervision tree"),
            ("schedules", "/schedules", "Schedules"),
        )
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>aion · {esc(title)}</title><link rel=stylesheet href=/static/ui.css>"
        '<link rel=icon href="data:,"><script src=/static/ui.js defer></script></head>'
        f'<body data-page="{page}" data-readonly="{int(backend.read_only)}" {attrs}>'
        f'<header><strong>aion</strong><nav>{nav}</nav>{mode}<span class="data-dir">{esc(backend.data_dir)}</span>'
        f'</header><main><h1>{esc(title)}</h1><div id="message" role="status"></div>{body}</main></body></html>'
    )


def error_page(error: AionError, status: int) -> str:
    """A page saying what went wrong (its code and message)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>aion · error</title>"
        "<link rel=stylesheet href=/static/ui.css></head><body><main>"
        f'<h1>HTTP {status}</h1><p class="error">error[{esc(error.code)}]: {esc(error)}</p>'
        '<p><a href="/">Workflows</a></p></main></body></html>'
    )


# -- Workflows ------------------------------------------------------------------------------------------------


def _query_of(params: dict[str, str]) -> str:
    """The visibility query of the page's filters: the written query, or status and type as a query."""
    if params.get("query"):
        return params["query"]
    parts = []
    if params.get("status"):
        parts.append(f"Status = '{params['status']}'")
    if params.get("workflow_type"):
        parts.append("WorkflowType = '{}'".format(params["workflow_type"].replace("'", "\\'")))
    return " AND ".join(parts)


def workflows_page(backend: Backend, request: Request) -> str:
    """Every workflow's current run, filtered by status, type or a visibility query, with counts and pages."""
    keys = ("status", "workflow_type", "query", "page_size", "page_token")
    params = {key: request.query_params.get(key, "") for key in keys}
    query = _query_of(params)
    size = int(params["page_size"]) if params["page_size"].isdigit() else PAGE_SIZE
    page = backend.call("list", {"query": query, "page_size": size, "next_page_token": params["page_token"] or None})
    counts = backend.call("count", {"query": (query + " GROUP BY Status").strip()})
    count_cells = "".join(
        f'<span class="count status-{s}" data-status="{s}">{s} <b>{esc(counts["groups"].get(s, 0))}</b></span>'
        for s in STATUSES
    )
    options = "".join(
        f'<option value="{s}"{" selected" if params["status"] == s else ""}>{s}</option>' for s in ["", *STATUSES]
    )
    rows = "".join(
        f'<tr data-workflow-id="{esc(run["workflow_id"])}"><td><a href="{workflow_href(run["workflow_id"])}">'
        f"{esc(run['workflow_id'])}</a></td><td>{esc(run['workflow_type'])}</td>"
        f'<td class="status status-{esc(run["status"])}" data-field="status">{esc(run["status"])}</td>'
        f'<td>{esc(run["start_time"])}</td><td data-field="close_time">{esc(run["close_time"])}</td>'
        f'<td>{esc(run.get("version"))}</td><td class="mono">{esc(run["run_id"])}</td></tr>'
        for run in page["workflows"]
    )
    more = ""
    if page["next_page_token"]:
        more_params = {k: v for k, v in params.items() if v and k != "page_token"}
        more_params["page_token"] = page["next_page_token"]
        more = f'<p><a id="next-page" href="/?{esc(urlencode(more_params))}">next page</a></p>'
    body = (
        f'<form class="filters" method=get action="/">'
        f"<label>status <select name=status id=filter-status>{options}</select></label>"
        f'<label>type <input name=workflow_type id=filter-type value="{esc(params["workflow_type"])}"></label>'
        f'<label class=wide>query <input name=query id=filter-query value="{esc(params["query"])}" '
        "placeholder=\"WorkflowType = 'checkout' AND Status = 'failed'\"></label>"
        "<button type=submit id=filter-apply>Filter</button></form>"
        f'<p class="counts" id="counts">total <b id="count-total">{esc(counts["count"])}</b> {count_cells}</p>'
        '<table id="workflows"><thead><tr><th>workflow id</th><th>type</th><th>status</th><th>started</th>'
        f"<th>closed</th><th>version</th><th>run id</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{more if rows else '<p>no workflows</p>'}"
    )
    attrs = f'data-query="{esc(query)}" data-page-token="{esc(params["page_token"])}" data-page-size="{size}"'
    return _layout("Workflows", "workflows", backend, body, attrs)


# -- A workflow -------------------------------------------------------------------------------------------------


def event_row(event: dict[str, Any]) -> str:
    """One history event: time, seq, type, a preview of its fields, and all of them on expanding."""
    fields = {k: v for k, v in event.items() if k not in ("type", "seq", "recorded_at", "workflow_id")}
    text = _json(fields)
    preview = text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"
    return (
        f'<tr class="event" data-seq="{esc(event["seq"])}"><td>{esc(event["seq"])}</td>'
        f'<td>{esc(event["recorded_at"])}</td><td class="event-type">{esc(event["type"])}</td>'
        f'<td><details><summary class="mono">{esc(preview)}</summary><pre>{esc(_json(fields, 2))}</pre>'
        "</details></td></tr>"
    )


def _table(cls: str, headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="{cls} empty">{empty}</p>'
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}" id="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _last_failures(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    failures: dict[int, dict[str, Any]] = {}
    for event in events:
        if event["type"] == "ActivityFailed":
            failures[event["activity_id"]] = event.get("failure") or {}
    return failures


def _actions(backend: Backend) -> str:
    if backend.read_only:
        return '<p class="readonly-note">read-only: actions need a server started with aion serve --ui</p>'
    buttons = "".join(
        f'<button type=button class="action" data-action="{name}" id="action-{name}">{label}</button>'
        for name, label in (
            ("cancel", "Cancel"),
            ("terminate", "Terminate"),
            ("pause", "Pause"),
            ("resume", "Resume"),
            ("unblock", "Unblock"),
            ("reset", "Reset"),
        )
    )
    return (
        '<section class="actions"><h2>Actions</h2>'
        '<div class=row><label>signal <input id="signal-name" placeholder="name"></label>'
        '<label class=wide>payload (JSON) <input id="signal-payload" placeholder="null"></label>'
        '<button type=button id="signal-send">Send signal</button></div>'
        '<div class=row><label>reason <input id="action-reason" placeholder="why (cancel, terminate, pause, reset)">'
        '</label><label>reset to seq <input id="reset-seq" size=6 placeholder="last"></label>'
        f"{buttons}</div></section>"
    )


def workflow_page(backend: Backend, request: Request) -> str:
    """One workflow: its runs, its current run's state and pending work, its history, and the actions."""
    workflow_id = request.path_params["workflow_id"]
    view = backend.call("describe", {"workflow_id": workflow_id})
    runs = backend.call("runs", {"workflow_id": workflow_id})["runs"]
    history = backend.call("history", {"workflow_id": workflow_id})["events"]
    pending = view["pending"]
    failures = _last_failures(history)
    outcome = ""
    if view["result"] is not None or view["status"] == "completed":
        outcome = f'<h2>Result</h2><pre id="result">{esc(_json(view["result"], 2))}</pre>'
    if view["failure"]:
        failure = view["failure"]
        outcome = (
            f'<h2>Failure</h2><p class="error" id="failure">{esc(failure.get("type"))}: {esc(failure.get("message"))}'
            f"</p><details><summary>traceback</summary><pre>{esc(failure.get('traceback'))}</pre></details>"
        )
    if view.get("blocked"):
        block = view["blocked"]
        outcome += f'<p class="error" id="blocked">blocked ({esc(block["cause"])}): {esc(block["message"])}</p>'
    activities = [
        [
            esc(a["activity_id"]),
            esc(a["activity_type"]),
            esc(a["state"]),
            esc(a["attempt"]),
            esc(a["next_attempt_at"]),
            esc(
                f"{failures[a['activity_id']].get('type')}: {failures[a['activity_id']].get('message')}"
                if a["activity_id"] in failures
                else ""
            ),
        ]
        for a in pending["activities"]
    ]
    timers = [[esc(t["timer_id"]), esc(t["fire_at"]), esc(t.get("waiting_for"))] for t in pending["timers"]]
    children = [
        [
            esc(c["child_id"]),
            f'<a href="{workflow_href(c["workflow_id"])}">{esc(c["workflow_id"])}</a>',
            esc(c["workflow_type"]),
        ]
        for c in pending["children"]
    ]
    run_rows = [
        [
            f'<span class="mono">{esc(r["run_id"])}</span>' + (" (current)" if r["run_id"] == view["run_id"] else ""),
            f'<span class="status status-{esc(r["status"])}">{esc(r["status"])}</span>',
            esc(r["first_seq"]),
            esc(r["start_time"]),
            esc(r["close_time"]),
            esc(r["ended_by"]) + (f' → <span class="mono">{esc(r["next_run_id"])}</span>' if r["next_run_id"] else ""),
        ]
        for r in runs
    ]
    summary = (
        '<dl class="summary">'
        f'<dt>status</dt><dd><span id="status" class="status status-{esc(view["status"])}">'
        f"{esc(view['status'])}</span></dd>"
        f"<dt>type</dt><dd>{esc(view['workflow_type'])}</dd><dt>version</dt><dd>{esc(view['version'])}</dd>"
        f'<dt>run</dt><dd class="mono">{esc(view["run_id"])}</dd>'
        f"<dt>started</dt><dd>{esc(view['start_time'])}</dd>"
        f'<dt>closed</dt><dd id="close-time">{esc(view["close_time"])}</dd>'
        f'<dt>waiting on</dt><dd id="waiting-on">{esc(view["waiting_on"])}</dd>'
        f'<dt>input</dt><dd class="mono">{esc(_json(view["input"]))}</dd>'
        f'<dt>memo</dt><dd class="mono">{esc(_json(view["memo"]))}</dd></dl>'
    )
    body = (
        f'{summary}<div id="outcome">{outcome}</div>{_actions(backend)}'
        "<h2>Pending activities</h2>"
        + _table("activities", ["id", "type", "state", "attempt", "next attempt", "last failure"], activities, "none")
        + "<h2>Timers</h2>"
        + _table("timers", ["id", "fires at", "waiting for"], timers, "none")
        + "<h2>Children</h2>"
        + _table("children", ["id", "workflow", "type"], children, "none")
        + "<h2>Runs</h2>"
        + _table("runs", ["run", "status", "first seq", "started", "closed", "ended by"], run_rows, "none")
        + '<h2>History</h2><table id="history"><thead><tr><th>seq</th><th>time</th><th>event</th>'
        f"<th>payload</th></tr></thead><tbody>{''.join(event_row(e) for e in history)}</tbody></table>"
    )
    last_seq = history[-1]["seq"] if history else 0
    attrs = (
        f'data-workflow-id="{esc(workflow_id)}" data-status="{esc(view["status"])}" data-last-seq="{esc(last_seq)}"'
        f' data-run-id="{esc(view["run_id"])}"'
    )
    return _layout(f"Workflow {workflow_id}", "workflow", backend, body, attrs)


# -- The tree and the schedules ------------------------------------------------------------------------------


def tree_page(backend: Backend, request: Request) -> str:
    """The live supervision tree: drawn by the script from the tree's event stream."""
    if backend.read_only:
        body = (
            '<p class="readonly-note">The supervision tree is live state: it needs a running engine '
            "(aion serve --ui).</p>"
        )
    else:
        body = (
            '<p id="tree-title">connecting…</p><table id="tree"><thead><tr><th>node</th><th>kind</th><th>pid</th>'
            "<th>workflow</th><th>state</th><th>restarts</th><th>last exit</th><th>uptime</th><th>RSS</th>"
            '<th>CPU</th></tr></thead><tbody></tbody></table><p id="tree-updated"></p>'
        )
    return _layout("Supervision tree", "tree", backend, body)


def schedules_page(backend: Backend, request: Request) -> str:
    """Every schedule: its spec, next fire times, recent actions, and pause/unpause/trigger."""
    if backend.read_only:
        body = '<p class="readonly-note">Schedules are read from a running engine (aion serve --ui).</p>'
        return _layout("Schedules", "schedules", backend, body)
    schedules = backend.call("schedule_list", {})["schedules"]
    rows = []
    for s in schedules:
        spec = s["spec"]
        what = ", ".join(spec.get("cron") or []) or (f"every {spec.get('interval')} s" if spec.get("interval") else "")
        actions = "".join(
            f'<li><a href="{workflow_href(a["workflow_id"])}">{esc(a["workflow_id"])}</a> {esc(a["fire_at"])}'
            f" {esc(a.get('status'))}{' (manual)' if a.get('manual') else ''}</li>"
            for a in s["recent_actions"][-5:]
        )
        buttons = "".join(
            f'<button type=button class="schedule-action" data-action="{name}">{name}</button>'
            for name in ("pause", "unpause", "trigger")
        )
        rows.append(
            f'<tr data-schedule-id="{esc(s["schedule_id"])}"><td>{esc(s["schedule_id"])}</td>'
            f"<td>{esc(s['workflow_type'])}</td><td>{esc(what)} ({esc(spec.get('timezone'))})</td>"
            f'<td class="paused">{"paused" if s["paused"] else "active"}'
            f"{': ' + esc(s['note']) if s.get('note') else ''}</td>"
            f"<td><ul>{''.join(f'<li>{esc(t)}</li>' for t in s['next_fires'][:3])}</ul></td>"
            f"<td><ul>{actions}</ul></td><td>{buttons}</td></tr>"
        )
    body = (
        '<table id="schedules"><thead><tr><th>schedule</th><th>workflow type</th><th>spec</th><th>state</th>'
        f"<th>next fires</th><th>recent actions</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>no schedules</p>"
    )
    return _layout("Schedules", "schedules", backend, body)

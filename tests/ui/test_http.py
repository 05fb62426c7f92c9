"""The HTTP API's rules against real servers: the token and the CSRF guard, the token for reading off loopback,
refusal of every action in read-only mode (``aion ui``), the OpenAPI description, and the error bodies."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

import aion
from aion.http._routes import API_PREFIX, ROUTES, STREAMS
from tests.ui.conftest import TOKEN, UIProcess, http

pytestmark = pytest.mark.timeout(180)

BEARER = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


def test_state_changes_need_the_token_and_the_csrf_guard(engine_ui: UIProcess) -> None:
    url = engine_ui.url + API_PREFIX
    start = {"workflow_type": "waiter", "workflow_id": "w"}
    # Reading on loopback needs no token; changing anything does.
    assert http("GET", f"{url}/workflows").status == 200
    refused = http("POST", f"{url}/workflows", start, JSON)
    assert (refused.status, refused.code) == (401, "unauthorized")
    wrong = http("POST", f"{url}/workflows", start, {**JSON, "Authorization": "Bearer nope-nope-nope"})
    assert (wrong.status, wrong.code) == (401, "unauthorized")
    assert http("GET", f"{url}/workflows/w").code == "not_found"  # nothing was started by the refused ones
    # The bearer token is enough (a browser never sends that header on its own).
    assert http("POST", f"{url}/workflows", start, {**JSON, **BEARER}).status == 200
    # The token as the browser's cookie needs the CSRF header matching the CSRF cookie.
    cookie = {**JSON, "Cookie": f"aion_token={TOKEN}; aion_csrf=abc123"}
    signal = {"name": "go", "payload": 1}
    no_header = http("POST", f"{url}/workflows/w/signal", signal, cookie)
    assert (no_header.status, no_header.code) == (403, "forbidden")
    mismatch = http("POST", f"{url}/workflows/w/signal", signal, {**cookie, "X-Aion-CSRF": "other"})
    assert (mismatch.status, mismatch.code) == (403, "forbidden")
    foreign = http(
        "POST",
        f"{url}/workflows/w/signal",
        signal,
        {**cookie, "X-Aion-CSRF": "abc123", "Origin": "http://evil.example"},
    )
    assert (foreign.status, foreign.code) == (403, "forbidden")
    assert http("POST", f"{url}/workflows/w/signal", signal, {**cookie, "X-Aion-CSRF": "abc123"}).status == 200
    result = http("GET", f"{url}/workflows/w/result?timeout=30")
    assert result.status == 200 and result.body["result"] == 1
    # A page opened with ?token= keeps it in an HttpOnly cookie and drops it from the URL; pages set the CSRF cookie.
    page = http("GET", f"{engine_ui.url}/?token={TOKEN}")
    assert page.status == 303 and "token" not in page.headers["location"]
    assert "aion_token=" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    assert "aion_csrf=" in http("GET", f"{engine_ui.url}/").headers["set-cookie"]


def test_off_loopback_reading_needs_the_token_and_a_generated_one_is_printed(
    launch: Callable[..., UIProcess], data_dir: Path
) -> None:
    ui = launch(data_dir, "--ui", "0.0.0.0:0")
    token = ui.printed_token()
    assert token is not None and len(token) >= 32
    assert f"?token={token}" in ui.log.read_text()
    url = ui.url.replace("0.0.0.0", "127.0.0.1") + API_PREFIX
    assert http("GET", f"{url}/workflows").code == "unauthorized"
    assert http("GET", url.removesuffix(API_PREFIX) + "/").status == 401
    assert http("GET", f"{url}/workflows", headers={"Authorization": f"Bearer {token}"}).status == 200
    client = aion.Client(url.removesuffix(API_PREFIX), token=token)
    assert client.start_workflow("greet", "x", workflow_id="g").result(timeout=60) == "hello X"


def test_read_only_ui_shows_everything_and_refuses_every_action(
    launch: Callable[..., UIProcess], data_dir: Path
) -> None:
    engine = launch(data_dir, "--ui", "127.0.0.1:0", "--ui-token", TOKEN)
    client = aion.Client(engine.url, token=TOKEN)
    client.start_workflow("greet", "ann", workflow_id="done").result(timeout=60)
    client.start_workflow("waiter", workflow_id="open")
    assert engine.stop() == 0

    ui = launch(data_dir, "--listen", "127.0.0.1:0", "--ui-token", TOKEN, command="ui")
    assert "read-only web UI" in ui.log.read_text()
    url = ui.url + API_PREFIX
    listed = http("GET", f"{url}/workflows?query=")
    assert {run["workflow_id"]: run["status"] for run in listed.body["workflows"]} == {
        "done": "completed",
        "open": "running",
    }
    described = http("GET", f"{url}/workflows/done").body
    assert described["result"] == "hello ANN"
    assert "known only to a running engine" in http("GET", f"{url}/workflows/open").body["waiting_on"]
    assert http("GET", f"{url}/count?query=GROUP%20BY%20Status").body["groups"] == {"completed": 1, "running": 1}
    assert [e["type"] for e in http("GET", f"{url}/workflows/done/history").body["events"]][-1] == "WorkflowCompleted"
    # Every state-changing route is refused, with the token and the CSRF header too.
    headers = {**JSON, **BEARER}
    for route in ROUTES:
        if route.changes_state:
            path = route.path.replace("{workflow_id}", "open").replace("{schedule_id}", "s")
            answer = http("POST", url + path, {"name": "go", "workflow_type": "waiter"}, headers)
            assert (answer.status, answer.code) == (403, "forbidden"), route
    assert http("GET", f"{url}/tree").code == "engine_not_running"
    page = http("GET", f"{ui.url}/workflows/open").body
    assert "read-only" in page and 'id="signal-send"' not in page and "action-cancel" not in page
    for path in ("/", "/tree", "/schedules"):
        assert http("GET", ui.url + path).status == 200


def test_the_openapi_description_has_every_route(engine_ui: UIProcess) -> None:
    answer = http("GET", f"{engine_ui.url}{API_PREFIX}/openapi.json")
    assert answer.status == 200
    spec = json.loads(json.dumps(answer.body))  # valid JSON, round trip
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "aion HTTP API"
    paths = spec["paths"]
    for route in ROUTES:
        assert route.method.lower() in paths[API_PREFIX + route.path], route
    for path in STREAMS:
        assert "get" in paths[API_PREFIX + path]
    expected = {
        "/workflows", "/count", "/signal-with-start", "/workflows/{workflow_id}", "/workflows/{workflow_id}/history",
        "/workflows/{workflow_id}/result", "/workflows/{workflow_id}/signal", "/workflows/{workflow_id}/query",
        "/workflows/{workflow_id}/cancel", "/workflows/{workflow_id}/terminate", "/workflows/{workflow_id}/reset",
        "/workflows/{workflow_id}/pause", "/workflows/{workflow_id}/resume", "/workflows/{workflow_id}/unblock",
        "/schedules", "/schedules/{schedule_id}/trigger", "/tree", "/tree/stream",
    }  # fmt: skip
    assert {API_PREFIX + path for path in expected} <= set(paths)
    # Every route the server answers is described (the app's own route table, not ours).
    from aion.http._app import build_app
    from aion.http._backend import Backend
    from aion.http._security import Security
    from aion.store import MemoryEventStore

    app = build_app(Backend(Path("."), MemoryEventStore()), Security(TOKEN, token_for_reads=False, read_only=True))
    served = {
        re.sub(r"{(\w+):path}", r"{\1}", route.path)
        for route in app.routes
        if getattr(route, "path", "").startswith(API_PREFIX)
    }
    assert served == set(paths)


def test_errors_have_their_codes_and_statuses(engine_ui: UIProcess) -> None:
    url = engine_ui.url + API_PREFIX
    headers = {**JSON, **BEARER}
    cases = [
        (http("GET", f"{url}/workflows/none"), 404, "not_found"),
        (http("POST", f"{url}/workflows", {"workflow_type": "nope"}, headers), 404, "unknown_workflow_type"),
        (http("POST", f"{url}/workflows", {"workflow_type": "waiter", "args": {}}, headers), 400, "invalid_argument"),
        (http("POST", f"{url}/workflows", raw=b"{nope", headers=headers), 400, "invalid_argument"),
        (http("POST", f"{url}/workflows", raw=b"[1]", headers=headers), 400, "invalid_argument"),
        (http("GET", f"{url}/workflows/x/history?after_seq=abc"), 400, "invalid_argument"),
        (http("GET", f"{url}/schedules/none"), 404, "schedule_not_found"),
    ]
    for answer, status, code in cases:
        assert (answer.status, answer.code) == (status, code), answer.body
        assert isinstance(answer.body["error"]["message"], str) and answer.body["error"]["message"]
    http("POST", f"{url}/workflows", {"workflow_type": "waiter", "workflow_id": "w"}, headers)
    again = http("POST", f"{url}/workflows", {"workflow_type": "waiter", "workflow_id": "w"}, headers)
    assert (again.status, again.code) == (409, "already_started")
    pending = http("GET", f"{url}/workflows/w/result?timeout=0.1")
    assert (pending.status, pending.code) == (408, "result_timeout")
    unknown_query = http("POST", f"{url}/workflows/w/query", {"name": "nope"}, headers)
    assert (unknown_query.status, unknown_query.code) == (422, "query_error")
    http("POST", f"{url}/workflows", {"workflow_type": "raises", "args": ["bad"], "workflow_id": "r"}, headers)
    failed = http("GET", f"{url}/workflows/r/result?timeout=30")
    assert (failed.status, failed.code) == (422, "workflow_failed")
    assert failed.body["error"]["type"] == "RuntimeError" and "bad" in failed.body["error"]["traceback"]


def test_the_history_streams_as_server_sent_events(engine_ui: UIProcess) -> None:
    client = aion.Client(engine_ui.url, token=TOKEN)
    handle = client.start_workflow("waiter", workflow_id="streamed")
    stream = urllib.request.urlopen(f"{engine_ui.url}{API_PREFIX}/workflows/streamed/history/stream", timeout=60)
    with stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = [stream.readline().decode(), stream.readline().decode()]
        assert first[0] == "event: event\n" and json.loads(first[1].removeprefix("data: "))["type"] == "WorkflowStarted"
        handle.signal("go", "done")  # the rest follows as it is recorded, then the end
        events = []
        for line in stream:
            text = line.decode()
            if text.startswith("event: "):
                events.append(text.removeprefix("event: ").strip())
            if text.startswith("data: ") and events[-1] == "event":
                events[-1] = json.loads(text.removeprefix("data: "))["type"]
            if events and events[-1] == "closed":
                break
    assert events[-2:] == ["WorkflowCompleted", "closed"] and "SignalReceived" in events
    unknown = http("GET", f"{engine_ui.url}{API_PREFIX}/workflows/none/history/stream")
    assert (unknown.status, unknown.code) == (404, "not_found")

"""The ASGI application: the JSON API (built from :data:`~aion.http._routes.ROUTES`), its server-sent event
streams, the OpenAPI description, the UI's pages and their static assets.

Every engine call runs in a worker thread (they block); every answer comes from the backend's operations.
Errors are ``{"error": {"code", "message"}}`` with the status of :func:`~aion.http._errors.http_status`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aion.errors import AionError, InvalidArgumentError, PayloadTooLargeError
from aion.http import _pages
from aion.http._backend import Backend
from aion.http._errors import error_body, http_status
from aion.http._openapi import openapi
from aion.http._routes import API_PREFIX, NUMERIC, ROUTES, ApiRoute
from aion.http._security import CSRF_COOKIE, TOKEN_COOKIE, Security, new_token

__all__ = ["MAX_BODY_BYTES", "build_app"]

log = logging.getLogger(__name__)

#: The largest request body accepted.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Seconds between two looks at the tree for its stream.
TREE_PERIOD = 0.5
STATIC = Path(__file__).parent / "static"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON (NaN and infinities as strings)."""
    return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


def error_response(error: BaseException) -> Response:
    if not isinstance(error, AionError):
        log.error("unexpected error serving an HTTP request", exc_info=error)
    status = http_status(error) if isinstance(error, AionError) else 500
    return json_response(error_body(error), status)


def _no_constant(name: str) -> Any:
    raise InvalidArgumentError(f"{name} is not a JSON number")


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(len(raw), MAX_BODY_BYTES, "the request body")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidArgumentError(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _fields(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in request.query_params.items():
        if key in NUMERIC:
            try:
                fields[key] = float(value) if "." in value or "e" in value.lower() else int(value)
            except ValueError:
                raise InvalidArgumentError(f"query parameter {key!r} must be a number, got {value!r}") from None
        else:
            fields[key] = value
    return fields


def _api_endpoint(route: ApiRoute, backend: Backend, security: Security) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            if route.changes_state:
                security.check_write(request)
            else:
                security.check_read(request)
            fields = _fields(request)
            if route.method == "POST":
                fields.update(await _body(request))
            fields.update(request.path_params)  # the path names the workflow / schedule, not the body
            if route.path == "/unblock-all":
                fields["all"] = True
            result = await run_in_threadpool(backend.call, route.op, fields)
        except Exception as error:  # every failure is an error body, never a traceback page
            return error_response(error)
        return json_response(result)

    return endpoint


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {dumps(data)}\n\n"


def _tree_stream(backend: Backend, security: Security) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            security.check_read(request)
        except AionError as error:
            return error_response(error)

        async def events() -> AsyncIterator[str]:
            while not backend.stopping.is_set():
                try:
                    yield _sse("tree", await run_in_threadpool(backend.call, "tree", {}))
                except AionError as error:
                    yield _sse("failure", error_body(error))
                await asyncio.sleep(TREE_PERIOD)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return endpoint


def _history_stream(backend: Backend, security: Security) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            security.check_read(request)
            fields = _fields(request)
            workflow_id = request.path_params["workflow_id"]
            after = int(fields.get("after_seq", 0))
            await run_in_threadpool(backend.call, "describe", {"workflow_id": workflow_id})  # 404 before streaming
        except Exception as error:
            return error_response(error)

        async def events() -> AsyncIterator[str]:
            seen = after
            while not backend.stopping.is_set():
                try:
                    view = await run_in_threadpool(
                        backend.call, "history", {"workflow_id": workflow_id, "after_seq": seen, "wait": 2}
                    )
                except AionError as error:
                    yield _sse("failure", error_body(error))
                    return
                for event in view["events"]:
                    seen = max(seen, int(event["seq"]))
                    yield _sse("event", event)
                if view["closed"]:
                    yield _sse("closed", {"workflow_id": workflow_id, "run_id": view["run_id"]})
                    return
                if backend.read_only:
                    await asyncio.sleep(1.0)  # nobody writes: no long-poll to wait in

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return endpoint


def _page(
    render: Callable[[Backend, Request], str], backend: Backend, security: Security
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:  # opened with the printed URL: keep the token in a cookie, drop it from the URL
            response: Response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response
        try:
            security.check_read(request)
            html = await run_in_threadpool(render, backend, request)
        except AionError as error:
            html = _pages.error_page(error, http_status(error))
            return HTMLResponse(html, status_code=http_status(error))
        response = HTMLResponse(html)
        if not request.cookies.get(CSRF_COOKIE):
            response.set_cookie(CSRF_COOKIE, new_token(), samesite="strict")
        return response

    return endpoint


def build_app(backend: Backend, security: Security) -> Starlette:
    """The application serving ``backend`` under ``security``'s rules."""
    routes: list[Route | Mount] = []
    for path, stream in (
        ("/tree/stream", _tree_stream(backend, security)),
        ("/workflows/{workflow_id:path}/history/stream", _history_stream(backend, security)),
    ):
        routes.append(Route(API_PREFIX + path, stream, methods=["GET"]))
    # Longest paths first: a workflow id may hold "/", so ".../{id}" must not swallow ".../{id}/signal".
    for route in sorted(ROUTES, key=lambda r: -len(r.path)):
        path = route.path.replace("{workflow_id}", "{workflow_id:path}").replace("{schedule_id}", "{schedule_id:path}")
        routes.append(Route(API_PREFIX + path, _api_endpoint(route, backend, security), methods=[route.method]))

    async def openapi_json(request: Request) -> Response:
        return json_response(openapi())

    routes.append(Route(API_PREFIX + "/openapi.json", openapi_json, methods=["GET"]))
    routes += [
        Route("/", _page(_pages.workflows_page, backend, security), methods=["GET"]),
        Route("/workflows/{workflow_id:path}", _page(_pages.workflow_page, backend, security), methods=["GET"]),
        Route("/tree", _page(_pages.tree_page, backend, security), methods=["GET"]),
        Route("/schedules", _page(_pages.schedules_page, backend, security), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)

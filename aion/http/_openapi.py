"""The OpenAPI 3.1 description of the HTTP JSON API, written from the route table (served at
``/api/v1/openapi.json``)."""

from __future__ import annotations

import re
from typing import Any

import aion
from aion.http._routes import API_PREFIX, NUMERIC, ROUTES, STREAMS

__all__ = ["openapi"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "The AionError code (docs/errors.md)."},
                "message": {"type": "string"},
                "type": {"type": "string", "description": "For a recorded failure: the exception's type."},
                "traceback": {"type": ["string", "null"]},
                "details": {},
            },
        }
    },
}


def _parameters(path: str, query: tuple[str, ...]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "number" if name in NUMERIC else "string"}}
        for name in query
    ]
    return params


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "200": ok,
        "400": {"description": "invalid_argument, payload_error", **error},
        "401": {"description": "unauthorized: the token is missing or wrong", **error},
        "403": {"description": "forbidden: no CSRF header, another origin, or a read-only server", **error},
        "404": {"description": "not_found and its kinds", **error},
        "409": {"description": "already_started, not_running, schedule_already_exists", **error},
        "408": {"description": "result_timeout, query_timeout: ask again", **error},
        "422": {"description": "the run ended without a result (workflow_failed, ...), query_error", **error},
        "503": {"description": "engine_not_running", **error},
        "500": {"description": "internal_error, store errors", **error},
    }


def openapi() -> dict[str, Any]:
    """The description, as a JSON-able map."""
    paths: dict[str, dict[str, Any]] = {}
    json_ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": f"{route.op}_{route.method.lower()}" if route.op == "unblock" else route.op,
            "summary": route.summary,
            "parameters": _parameters(route.path, route.query),
            "responses": _responses(json_ok),
        }
        if route.body:
            operation["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": {"type": "object", "properties": {name: {} for name in route.body}}}
                },
            }
        if route.changes_state:
            operation["security"] = [{"bearer": []}, {"cookie": [], "csrf": []}]
        paths.setdefault(API_PREFIX + route.path, {})[route.method.lower()] = operation
    for path, summary in STREAMS.items():
        paths[API_PREFIX + path] = {
            "get": {
                "operationId": "stream_" + ("tree" if path.startswith("/tree") else "history"),
                "summary": summary,
                "parameters": _parameters(path, ("after_seq",) if "history" in path else ()),
                "responses": _responses({"description": "OK", "content": {"text/event-stream": {}}}),
            }
        }
    paths[API_PREFIX + "/openapi.json"] = {
        "get": {"operationId": "openapi", "summary": "This description.", "responses": {"200": json_ok}}
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "aion HTTP API", "version": aion.__version__, "description": "See docs/ui.md."},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "aion_token"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-Aion-CSRF"},
            },
        },
    }

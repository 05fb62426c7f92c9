"""The HTTP API and the web UI of an aion engine (``aion serve --ui``, ``aion ui``), and ``aion.Client``.

``_routes`` (the API's route table), ``_backend`` (what each operation runs: the control operations and views,
on an engine or a read-only store), ``_app`` (the Starlette application), ``_security`` (token and CSRF),
``_pages`` and ``static/`` (the UI), ``_openapi`` (the description), ``_server`` (uvicorn in a thread),
``_errors`` (errors to HTTP and back) and ``_client`` (the client, standard library only). See ``docs/ui.md``.

Importing this package does not load the server framework: the server's names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aion.http._client import Client, RemoteWorkflowHandle

if TYPE_CHECKING:
    from aion.http._server import DEFAULT_ADDRESS, UIServer, serve_engine, serve_store

__all__ = ["DEFAULT_ADDRESS", "Client", "RemoteWorkflowHandle", "UIServer", "serve_engine", "serve_store"]

_LAZY = {"DEFAULT_ADDRESS", "UIServer", "serve_engine", "serve_store"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'aion.http' has no attribute {name!r}")
    value = getattr(importlib.import_module("aion.http._server"), name)
    globals()[name] = value
    return value

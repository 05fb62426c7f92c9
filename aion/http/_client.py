"""``aion.Client``: the handle API over the HTTP JSON API, for a service on another machine (standard library
only: it imports neither the engine nor the server framework).

Errors come back as the same :class:`~aion.errors.AionError` subclasses the Python API raises (by their code).
A request that never reached the server (connection refused: the engine is restarting) is retried until
``retry_for`` seconds have passed; a reading request whose connection broke is retried too, so
``handle.result()`` outlives an engine's SIGKILL and restart. A state-changing request whose connection broke
after it was sent is not retried (it may have been done): the error says so.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from aion._definitions import workflow_type_name
from aion.errors import ControlError, InvalidArgumentError, ResultTimeoutError
from aion.http._errors import error_from_body

__all__ = ["Client", "RemoteWorkflowHandle"]

#: The longest one ``result`` long-poll asks the server to wait (the server caps it at 30 s).
_POLL = 25.0


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


class Client:
    """A client of an aion server (``aion serve --ui``) at ``url`` (``http://host:port``).

    ``token`` is the server's token (needed for every state-changing call, and for reading off loopback).
    ``timeout`` bounds one HTTP request; ``retry_for`` how long an unreachable server is retried.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0, retry_for: float = 60.0) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"the server URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_for = retry_for

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- transport ---------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        """Call the API (``path`` under ``/api/v1``) and return its JSON answer, or raise its error."""
        query = {key: value for key, value in params.items() if value is not None}
        url = f"{self.url}/api/v1{path}" + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as answer:
                raw = answer.read()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = raw.decode(errors="replace")
                error = error_from_body(parsed, answer.code)
                unavailable = answer.code == 503 and (method == "GET" or error.code != "control_error")
                if unavailable and time.monotonic() < deadline:
                    pass  # an engine stopping or starting (a stopping one ends long-polls with 503): ask again
                else:
                    raise error from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError, OSError) as error:
                refused = isinstance(getattr(error, "reason", error), ConnectionRefusedError)
                if not (refused or method == "GET") or time.monotonic() >= deadline:
                    sent = "" if refused else " (it may have been done: check before repeating it)"
                    raise ControlError(f"cannot reach the aion server at {self.url}: {error}{sent}") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- the handle API ----------------------------------------------------------------------------------------

    def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Any = None,
        run_timeout: Any = None,
        memo: Any = None,
        version: int | None = None,
    ) -> RemoteWorkflowHandle:
        """Start a workflow (as ``Engine.start_workflow``); returns once it is durable. ``search_attributes``
        of type datetime are given as ISO 8601 strings; timeouts in seconds or ``timedelta``."""
        answer = self.request(
            "POST",
            "/workflows",
            {
                "workflow_type": workflow_type_name(workflow),
                "args": list(args),
                "workflow_id": workflow_id,
                "search_attributes": search_attributes,
                "execution_timeout": _seconds(execution_timeout),
                "run_timeout": _seconds(run_timeout),
                "memo": memo,
                "version": version,
            },
        )
        return RemoteWorkflowHandle(self, answer["workflow_id"], answer["run_id"])

    def signal_with_start(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str,
        signal: str,
        payload: Any = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Any = None,
        run_timeout: Any = None,
    ) -> RemoteWorkflowHandle:
        """Signal ``workflow_id``, starting it first if it is not running (as ``Engine.signal_with_start``)."""
        answer = self.request(
            "POST",
            "/signal-with-start",
            {
                "workflow_type": workflow_type_name(workflow),
                "args": list(args),
                "workflow_id": workflow_id,
                "signal": signal,
                "payload": payload,
                "search_attributes": search_attributes,
                "execution_timeout": _seconds(execution_timeout),
                "run_timeout": _seconds(run_timeout),
            },
        )
        return RemoteWorkflowHandle(self, answer["workflow_id"], answer["run_id"])

    def get_workflow(self, workflow_id: str) -> RemoteWorkflowHandle:
        """A handle to ``workflow_id``'s current run (``WorkflowNotFoundError`` if unknown)."""
        view = self.request("GET", _path(workflow_id))
        return RemoteWorkflowHandle(self, workflow_id, view["run_id"])

    def list_workflows(
        self,
        query: str | None = None,
        *,
        status: str | None = None,
        workflow_type: str | None = None,
        limit: int | None = None,
        page_size: int = 100,
        next_page_token: str | None = None,
    ) -> dict[str, Any]:
        """Current runs (``{"workflows": [...], "next_page_token": ...}`` with ``query``; as ``aion list
        --json`` without)."""
        if query is not None:
            return dict(
                self.request("GET", "/workflows", query=query, page_size=page_size, next_page_token=next_page_token)
            )
        return dict(self.request("GET", "/workflows", status=status, workflow_type=workflow_type, limit=limit))

    def count_workflows(self, query: str | None = None) -> dict[str, Any]:
        """``{"count": n, "groups": {...}}`` for ``query`` (``GROUP BY Status`` fills the groups)."""
        return dict(self.request("GET", "/count", query=query))

    def supervision_tree(self) -> dict[str, Any]:
        """The live supervision tree (as ``aion tree --json``)."""
        return dict(self.request("GET", "/tree"))

    def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule, described."""
        return list(self.request("GET", "/schedules")["schedules"])


def _path(workflow_id: str) -> str:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidArgumentError(f"workflow id must be a non-empty string, got {workflow_id!r}")
    return "/workflows/" + quote(workflow_id, safe="")


class RemoteWorkflowHandle:
    """A handle to one workflow over HTTP, like ``aion.WorkflowHandle``."""

    def __init__(self, client: Client, workflow_id: str, run_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"RemoteWorkflowHandle(workflow_id={self.workflow_id!r}, run_id={self.run_id!r})"

    def _post(self, action: str, body: dict[str, Any] | None = None) -> Any:
        return self._client.request("POST", f"{_path(self.workflow_id)}/{action}", body or {})

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the workflow to close and return its result (JSON), raising ``WorkflowFailedError`` & co. as
        the Python API does, and ``ResultTimeoutError`` if ``timeout`` passes first. Survives the server's
        restarts (it asks again)."""
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            remaining = _POLL if deadline is None else min(_POLL, max(deadline - time.monotonic(), 0.0))
            try:
                return self._client.request("GET", f"{_path(self.workflow_id)}/result", timeout=remaining)["result"]
            except ResultTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name``; returns once it is durable."""
        self._post("signal", {"name": name, "payload": payload})

    def query(self, name: str, *args: Any) -> Any:
        """Ask query ``name`` of the live workflow."""
        return self._post("query", {"name": name, "args": list(args)})["result"]

    def execute_update(self, name: str, *args: Any) -> Any:
        """Apply update ``name`` with ``args``; its handler's result once it is durable (``UpdateRejectedError``
        when the validator refuses it, ``UpdateFailedError`` when the handler raises)."""
        return self._post("update", {"name": name, "args": list(args)})["result"]

    def cancel(self, reason: str | None = None) -> bool:
        """Request cancellation; False if the run had already closed."""
        return bool(self._post("cancel", {"reason": reason})["took_effect"])

    def terminate(self, reason: str | None = None) -> bool:
        """Terminate the run; False if it had already closed."""
        return bool(self._post("terminate", {"reason": reason})["took_effect"])

    def pause(self, reason: str | None = None) -> bool:
        """Pause the run; False if it was paused already."""
        return bool(self._post("pause", {"reason": reason})["took_effect"])

    def resume(self) -> bool:
        """Resume the paused run; False if it was not paused."""
        return bool(self._post("resume")["took_effect"])

    def unblock(self) -> bool:
        """Try the blocked run again."""
        return bool(self._post("unblock")["retried"])

    def reset(self, *, to_seq: int | None = None, reason: str) -> str:
        """Reset to ``to_seq``; returns the new run's id."""
        return str(self._post("reset", {"to_seq": to_seq, "reason": reason})["run_id"])

    def describe(self) -> dict[str, Any]:
        """The current run in detail (as ``aion describe --json``)."""
        return dict(self._client.request("GET", _path(self.workflow_id)))

    def history(self, after_seq: int = 0, wait: float = 0) -> list[dict[str, Any]]:
        """The current run's events after ``after_seq`` (waiting up to ``wait`` s, at most 10, for new ones)."""
        view = self._client.request("GET", f"{_path(self.workflow_id)}/history", after_seq=after_seq, wait=wait or None)
        return list(view["events"])

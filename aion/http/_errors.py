"""Errors over HTTP, both ways: the status and JSON body the server answers an :class:`~aion.errors.AionError`
with, and the error the client raises for such a body.

The body is ``{"error": {"code": ..., "message": ...}}`` (with ``type``, ``traceback`` and ``details`` for an
error that carries a recorded failure); the code is the error class's stable ``code``, so the client raises the
same class the Python API would. It imports neither the server framework nor the engine.
"""

from __future__ import annotations

from typing import Any

from aion import errors as err

__all__ = ["error_body", "error_class", "error_from_body", "http_status"]

#: The HTTP status of each kind of error, most specific class first (the first match wins).
_STATUSES: tuple[tuple[type[err.AionError], int], ...] = (
    (err.UnauthorizedError, 401),
    (err.ForbiddenError, 403),
    (err.PayloadTooLargeError, 413),
    (err.CorruptPayloadError, 500),
    (err.InvalidArgumentError, 400),
    (err.PayloadError, 400),
    (err.RegistrationError, 400),
    (err.NotFoundError, 404),
    (err.WorkflowAlreadyStartedError, 409),
    (err.ScheduleAlreadyExistsError, 409),
    (err.WorkflowNotRunningError, 409),
    (err.SequenceConflictError, 409),
    (err.ResultTimeoutError, 408),
    (err.QueryTimeoutError, 408),
    (err.QueryError, 422),
    (err.WorkflowFailedError, 422),
    (err.WorkflowCancelledError, 422),
    (err.WorkflowTerminatedError, 422),
    (err.WorkflowTimedOutError, 422),
    (err.EngineNotRunningError, 503),
    (err.ControlError, 503),
)


def http_status(error: err.AionError) -> int:
    """The HTTP status an error is answered with (500 for anything not listed: a store error, a bug)."""
    for kind, status in _STATUSES:
        if isinstance(error, kind):
            return status
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """The JSON body of an error answer; a non-aion exception is an ``internal_error`` naming its type."""
    if not isinstance(error, err.AionError):
        return {"error": {"code": err.InternalError.code, "message": f"unexpected {type(error).__name__}: {error}"}}
    body: dict[str, Any] = {"code": error.code, "message": str(error)}
    if isinstance(error, err.FailureError):
        body.update(type=error.type, traceback=error.traceback, details=_plain(error.details))
    return {"error": body}


def _plain(value: Any) -> Any:
    """``value`` if JSON can hold it as it is, else its ``repr``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def _classes(root: type[err.AionError]) -> list[type[err.AionError]]:
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_classes(sub))
    return found


#: Every error class by its code. A code a subclass shares with its parent (``not_found``) names the subclass
#: (``WorkflowNotFoundError``), which ``except`` clauses for either class catch.
_BY_CODE: dict[str, type[err.AionError]] = {}
for _kind in _classes(err.AionError):  # parents before their subclasses
    _BY_CODE[_kind.code] = _kind


def error_class(code: str) -> type[err.AionError]:
    """The error class of ``code`` (``AionError`` itself for a code this version does not know)."""
    return _BY_CODE.get(code, err.AionError)


def error_from_body(body: Any, status: int) -> err.AionError:
    """The error an error answer stands for, of the class its code names, carrying its message (and the
    failure's ``type``, ``traceback`` and ``details``)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail.get("code"), str):
        return err.ControlError(f"the server answered HTTP {status} without an aion error body: {str(body)[:200]}")
    kind = error_class(detail["code"])
    message = str(detail.get("message", ""))
    error = kind.__new__(kind)  # not __init__: some classes build their message from other arguments
    Exception.__init__(error, message)
    if isinstance(error, err.FailureError):
        error.message = message
        error.type = str(detail.get("type") or "Exception")
        error.traceback = detail.get("traceback")
        error.details = detail.get("details")
    return error

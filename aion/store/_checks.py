"""Argument checks of the store's API, shared by every store implementation.

It owns the rules for workflow ids, type names and run ids, aware datetimes, status filters, limits and
timer keys (``InvalidArgumentError`` for anything else). It never reads or writes a store and holds no state
but the cache of workflow ids already found valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aion._ids import validate_workflow_id
from aion.errors import InvalidArgumentError
from aion.status import WorkflowStatus

#: Longest workflow type name and run id, in UTF-8 bytes (they are parts of LMDB keys, at most 511 bytes).
MAX_NAME_BYTES = 200


def check_name(value: object, what: str) -> str:
    """Check a workflow type name or run id: a non-empty string without NUL, at most ``MAX_NAME_BYTES``."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, not {value!r}")
    if "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidArgumentError(f"{what} {value!r} is too long or contains NUL")
    return value


def check_aware(value: datetime, what: str) -> datetime:
    """Refuse a naive datetime: every time in the store is UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def parse_status(status: object) -> WorkflowStatus | None:
    """A status filter: ``None``, a ``WorkflowStatus`` or its string value (``InvalidArgumentError`` else)."""
    if status is None:
        return None
    try:
        return WorkflowStatus(str(status))
    except ValueError:
        raise InvalidArgumentError(f"unknown workflow status {status!r}") from None


def check_limit(limit: object) -> None:
    """A ``limit`` argument: ``None`` or a non-negative int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgumentError(f"limit must be a non-negative int or None, not {limit!r}")


def check_key(key: object, what: str) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < 2**63:
        raise InvalidArgumentError(f"{what} must be a non-negative int, not {key!r}")
    return key


#: Workflow ids already found valid (the check is pure; every append checks its id): cleared when full.
VALID_IDS: set[str] = set()
VALID_IDS_SIZE: Final = 100_000


def check_workflow_id(workflow_id: object) -> str:
    """Validate a workflow id with the domain rules (``InvalidArgumentError``)."""
    if type(workflow_id) is str and workflow_id in VALID_IDS:
        return workflow_id
    if not isinstance(workflow_id, str):
        raise InvalidArgumentError(f"workflow id must be a string, not {type(workflow_id).__name__}")
    validate_workflow_id(workflow_id)
    if len(VALID_IDS) >= VALID_IDS_SIZE:
        VALID_IDS.clear()
    VALID_IDS.add(workflow_id)
    return workflow_id

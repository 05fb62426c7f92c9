"""Reading the fields of a control request: each checked for its type, with ``invalid_argument`` naming it."""

from __future__ import annotations

from typing import Any

from aion.errors import InvalidArgumentError


def text_field(request: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    """The non-empty string ``request[key]`` (``None`` when absent and not ``required``)."""
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"request field {key!r} must be a non-empty string, got {value!r}")
    return value

"""The typed search attributes: the declared schema, the built-ins, and the checks of a value against its type.

A schema maps attribute names to one of :data:`ATTRIBUTE_TYPES`. Values are checked at start and at upsert
(:meth:`SearchAttributeSchema.check`) and normalised (an ``int`` for a ``float`` attribute becomes a ``float``, an
ISO 8601 string for a ``datetime`` attribute an aware UTC ``datetime``), so what is recorded always has the
declared type. The built-ins (``WorkflowId``, ``Status``, ``StartTime``, ...) are derived from the run record and
may not be set. This module never touches a store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from aion.errors import InvalidArgumentError

#: Every declarable attribute type.
ATTRIBUTE_TYPES: Final = ("keyword", "text", "int", "float", "bool", "datetime", "keyword_list")

#: The built-in attributes every run has (``CloseTime``, ``ExecutionDuration`` and ``Version`` may be null).
BUILTINS: Final[Mapping[str, str]] = {
    "WorkflowId": "keyword",
    "RunId": "keyword",
    "WorkflowType": "keyword",
    "Status": "keyword",
    "StartTime": "datetime",
    "CloseTime": "datetime",
    "ExecutionDuration": "float",
    "Version": "keyword",
}

#: Longest keyword (and keyword list element) in UTF-8 bytes: keywords are parts of LMDB keys.
MAX_KEYWORD_BYTES: Final = 200
#: Longest keyword list.
MAX_LIST_ITEMS: Final = 64
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def parse_datetime(value: object, what: str) -> datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string (a naive one is taken as UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise InvalidArgumentError(f"{what} must be a datetime (ISO 8601), not {value!r}") from None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{what} must be a datetime (ISO 8601), not {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _keyword(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a keyword (str), not {value!r}")
    if "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_KEYWORD_BYTES:
        raise InvalidArgumentError(f"{what} must be a keyword of at most {MAX_KEYWORD_BYTES} bytes without NUL")
    return value


def normalise(kind: str, value: object, what: str) -> Any:
    """``value`` checked against ``kind`` and normalised; ``InvalidArgumentError`` names ``what`` and the type."""
    if kind == "keyword":
        return _keyword(value, what)
    if kind == "text":
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{what} must be text (str), not {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise InvalidArgumentError(f"{what} must be an int (64-bit), not {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgumentError(f"{what} must be a float (finite number), not {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{what} must be a bool, not {value!r}")
        return value
    if kind == "datetime":
        return parse_datetime(value, what)
    if kind == "keyword_list":
        if not isinstance(value, list | tuple):
            raise InvalidArgumentError(f"{what} must be a keyword_list (list of str), not {value!r}")
        if len(value) > MAX_LIST_ITEMS:
            raise InvalidArgumentError(f"{what} must be a keyword_list of at most {MAX_LIST_ITEMS} items")
        return [_keyword(item, f"{what}[{index}] (keyword_list)") for index, item in enumerate(value)]
    raise InvalidArgumentError(f"unknown search attribute type {kind!r} (one of: {', '.join(ATTRIBUTE_TYPES)})")


def parse_text(kind: str, text: str, what: str) -> Any:
    """A value of ``kind`` written as text (the CLI's ``--search-attr K=V``): a keyword list as a JSON array or
    comma-separated, a bool as true/false, numbers and ISO 8601 datetimes as written."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise InvalidArgumentError(f"{what} must be {'an' if kind == 'int' else 'a'} {kind}, not {text!r}") from None
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise InvalidArgumentError(f"{what} must be a bool (true or false), not {text!r}")
        return text.lower() == "true"
    if kind == "keyword_list":
        if text.startswith("["):
            import json  # noqa: PLC0415 (only the CLI's path needs it)

            try:
                return json.loads(text)
            except ValueError:
                raise InvalidArgumentError(f"{what} must be a JSON array or comma-separated, not {text!r}") from None
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


class SearchAttributeSchema:
    """The declared search attributes (name -> type) plus the built-ins.

    >>> schema = SearchAttributeSchema({"CustomerId": "keyword", "Amount": "float"})
    >>> schema.check({"Amount": 3})
    {'Amount': 3.0}
    """

    def __init__(self, declared: Mapping[str, str] | None = None) -> None:
        if declared is not None and not isinstance(declared, Mapping):
            raise InvalidArgumentError(f"search_attributes must be a mapping of name to type, not {declared!r}")
        custom: dict[str, str] = {}
        for name, kind in (declared or {}).items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise InvalidArgumentError(f"search attribute name {name!r} must be an identifier of at most 64 chars")
            if name in BUILTINS:
                raise InvalidArgumentError(f"search attribute {name!r} is built in and cannot be declared")
            if kind not in ATTRIBUTE_TYPES:
                raise InvalidArgumentError(
                    f"search attribute {name!r} has unknown type {kind!r} (one of: {', '.join(ATTRIBUTE_TYPES)})"
                )
            custom[name] = kind
        #: The declared (custom) attributes, by name.
        self.custom: Mapping[str, str] = custom

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchAttributeSchema) and dict(self.custom) == dict(other.custom)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.custom.items())))

    def __repr__(self) -> str:
        return f"SearchAttributeSchema({dict(self.custom)!r})"

    def type_of(self, name: str) -> str | None:
        """The type of attribute ``name`` (built-in or declared), ``None`` when unknown."""
        return BUILTINS.get(name) or self.custom.get(name)

    def check(self, attributes: Mapping[str, Any] | None, *, allow_none: bool = False) -> dict[str, Any]:
        """``attributes`` checked and normalised: every name declared, every value of its type (``None`` removes
        the attribute when ``allow_none``, at upsert). Raises ``InvalidArgumentError`` naming the attribute."""
        if attributes is None:
            return {}
        if not isinstance(attributes, Mapping):
            raise InvalidArgumentError(f"search attributes must be a mapping, not {attributes!r}")
        checked: dict[str, Any] = {}
        for name, value in attributes.items():
            if name in BUILTINS:
                raise InvalidArgumentError(f"search attribute {name!r} is built in and cannot be set")
            kind = self.custom.get(name) if isinstance(name, str) else None
            if kind is None:
                known = ", ".join(sorted(self.custom)) or "none declared"
                raise InvalidArgumentError(
                    f"search attribute {name!r} is not declared (declared: {known}); "
                    "declare it with Engine(search_attributes={...})"
                )
            if value is None and allow_none:
                checked[name] = None
                continue
            checked[name] = normalise(kind, value, f"search attribute {name!r} ({kind})")
        return checked

    def parse_texts(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """Attributes written as text (``--search-attr K=V``) converted to their declared types and checked."""
        values: dict[str, Any] = {}
        for name, text in texts.items():
            kind = self.custom.get(name)
            values[name] = parse_text(kind, text, f"search attribute {name!r} ({kind})") if kind else text
        return self.check(values)

    def to_dict(self) -> dict[str, str]:
        """The declared attributes as a plain map (what the store keeps in its ``meta``)."""
        return dict(self.custom)

"""What a parsed query means for one run: the filter, the order of results and the page tokens.

:func:`matches` is the exact meaning of a filter over a run's attributes (``_keys.run_attributes``); the indexes
only narrow down which runs it is applied to. Semantics: a predicate on an attribute the run does not have is
false (so ``X != 'a'`` holds only for runs that have ``X``), ``NOT`` negates plainly, an empty keyword list is
null, and ``=`` / ``!=`` / ``IN`` / ``STARTS_WITH`` on a keyword list ask whether some element / no element
matches. This module never touches a store.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aion._codec import decode_payload, encode_payload
from aion.errors import InvalidArgumentError
from aion.visibility._keys import run_attributes
from aion.visibility._query import And, Between, Compare, In, IsNull, Node, Not, Or, OrderKey, StartsWith

if TYPE_CHECKING:  # the store writes this index with these functions: only its types are read here
    from aion.store._types import RunInfo

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _present(value: Any) -> bool:
    return value is not None and value != []


def matches(node: Node | None, attributes: Mapping[str, Any]) -> bool:
    """Whether a run with ``attributes`` passes the filter ``node`` (``None``: every run)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(item, attributes) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, attributes) for item in node.items)
    if isinstance(node, Not):
        return not matches(node.item, attributes)
    value = attributes.get(node.name)
    if isinstance(node, IsNull):
        return _present(value) if node.negated else not _present(value)
    if not _present(value):
        return False
    items = value if isinstance(value, list) else None
    if isinstance(node, Compare):
        if items is not None:
            return (node.value in items) if node.op == "=" else (node.value not in items)
        try:
            return _OPS[node.op](value, node.value)
        except TypeError:  # a value recorded before its type was declared
            return False
    if isinstance(node, In):
        found = any(item in node.values for item in items) if items is not None else value in node.values
        return found != node.negated
    if isinstance(node, StartsWith):
        candidates = items if items is not None else [value]
        return any(isinstance(item, str) and item.startswith(node.prefix) for item in candidates)
    assert isinstance(node, Between)
    try:
        inside = bool(node.low <= value <= node.high)
    except TypeError:
        return False
    return inside != node.negated


def _compare_values(a: Any, b: Any) -> int:
    """Null first, then by value (values of another type, recorded before a declaration, by type name)."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    try:
        return int(a > b) - int(a < b)
    except TypeError:
        return (type(a).__name__ > type(b).__name__) - (type(a).__name__ < type(b).__name__)


def sort_key(order: Sequence[OrderKey]) -> Callable[[tuple[list[Any], str]], Any]:
    """A key for ``(order values, workflow id)`` rows: the order's keys, then the workflow id in the direction
    of the last key (so that the order is total and matches the index's own order)."""
    directions = [key.descending for key in order] + [order[-1].descending if order else True]

    def compare(left: tuple[list[Any], str], right: tuple[list[Any], str]) -> int:
        for a, b, descending in zip([*left[0], left[1]], [*right[0], right[1]], directions, strict=True):
            result = _compare_values(a, b)
            if result:
                return -result if descending else result
        return 0

    return functools.cmp_to_key(compare)


def order_values(run: RunInfo, order: Sequence[OrderKey]) -> tuple[list[Any], str]:
    """The sort row of ``run``: its values of the order's keys, and its workflow id."""
    attributes = run_attributes(run)
    return [attributes.get(key.name) for key in order], run.workflow_id


def encode_token(row: tuple[list[Any], str], query_text: str) -> str:
    """The page token after ``row`` (opaque to callers)."""
    data = encode_payload({"after": list(row[0]), "wf": row[1], "q": query_text}, limit=None)
    return base64.urlsafe_b64encode(data).decode("ascii")


def decode_token(token: str, query_text: str, width: int) -> tuple[list[Any], str]:
    """The row a page token continues after; ``InvalidArgumentError`` for a token of another query."""
    try:
        decoded = decode_payload(base64.urlsafe_b64decode(token.encode("ascii")))
        after, wf, text = decoded["after"], decoded["wf"], decoded["q"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError, Exception) as error:
        raise InvalidArgumentError(f"next_page_token is not a page token of this engine: {error}") from None
    if text != query_text or not isinstance(after, list) or len(after) != width or not isinstance(wf, str):
        raise InvalidArgumentError("next_page_token belongs to another query")
    return after, wf

"""Running a parsed query over a store's visibility index: which index entries to read, then the exact filter,
the order, the page.

A filter is narrowed by the index wherever it can be (:func:`candidates`): an equality, ``IN``, a range,
``BETWEEN``, ``STARTS_WITH`` or ``IS NOT NULL`` reads only the index entries of the matching values; ``AND`` reads
its cheapest side first and stops reading a side once it holds more runs than the best one so far; ``OR`` is the
union of its sides. Only what cannot be narrowed (``NOT``, ``!=``, ``IS NULL``, ``text`` attributes) reads every
run. The runs found are then filtered exactly (:func:`~aion.visibility._eval.matches`), so the index only ever
decides how much is read, never what is answered. It reads through an :class:`IndexSource`, one snapshot of a store.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from aion.errors import InvalidArgumentError
from aion.visibility._eval import decode_token, encode_token, matches, order_values, sort_key
from aion.visibility._keys import attribute_prefix, encode_value, run_attributes, workflow_of_key
from aion.visibility._query import And, Between, Compare, In, IsNull, Node, Not, Or, Query, StartsWith

if TYPE_CHECKING:  # the store writes this index with these functions: only its types are read here
    from aion.store._types import RunInfo

#: Attributes every run has, whose index can stream a whole listing in order.
_ALWAYS: Final = frozenset({"WorkflowId", "RunId", "WorkflowType", "Status", "StartTime"})
#: Largest page.
MAX_PAGE_SIZE: Final = 10_000


class IndexSource(Protocol):
    """One consistent snapshot of a store, as a query reads it."""

    #: False for a store opened read-only before its index was built (an older schema): every query scans.
    indexed: bool

    def index_keys(self, low: bytes, high: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        """The index keys in ``[low, high)``, in byte order (or reversed)."""
        ...

    def run(self, wf: bytes) -> RunInfo | None:
        """The current run record of workflow ``wf`` (its id, UTF-8)."""
        ...

    def runs(self) -> Iterator[RunInfo]:
        """Every workflow's current run record."""
        ...


@dataclass(frozen=True)
class WorkflowPage:
    """One page of a listing: the runs, and the token of the next page (``None`` on the last one)."""

    workflows: list[RunInfo]
    next_page_token: str | None = None


@dataclass(frozen=True)
class WorkflowCount:
    """How many runs match; with ``GROUP BY Status``, how many of each status (``groups``)."""

    count: int
    groups: dict[str, int] = field(default_factory=dict)


class _TooManyError(Exception):
    pass


def successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``."""
    data = bytearray(prefix)
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return b"\xff" * 512
    data[-1] += 1
    return bytes(data)


def _point(name: str, value: object) -> bytes:
    encoded = encode_value(value)
    if encoded is None:
        raise _TooManyError  # a literal the index cannot hold (a too long keyword): not narrowed by the index
    return attribute_prefix(name) + encoded


def ranges(node: Node) -> list[tuple[bytes, bytes]] | None:
    """The index ranges holding every run ``node`` may match, or ``None`` when the index cannot narrow it."""
    if isinstance(node, And | Or | Not) or node.kind == "text":
        return None
    try:
        if isinstance(node, Compare):
            point = _point(node.name, node.value)
            tag = point[: len(attribute_prefix(node.name)) + 1]
            return {
                "=": [(point, successor(point))],
                "<": [(tag, point)],
                "<=": [(tag, successor(point))],
                ">": [(successor(point), successor(tag))],
                ">=": [(point, successor(tag))],
            }.get(node.op)
        if isinstance(node, In):
            if node.negated:
                return None
            points = sorted({_point(node.name, value) for value in node.values})
            return [(point, successor(point)) for point in points]
        if isinstance(node, Between):
            if node.negated:
                return None
            low, high = _point(node.name, node.low), _point(node.name, node.high)
            return [(low, successor(high))] if low <= high else []
        if isinstance(node, StartsWith):
            start = attribute_prefix(node.name) + b"s" + node.prefix.encode("utf-8", "surrogatepass")
            return [(start, successor(start))]
        if isinstance(node, IsNull) and node.negated:
            prefix = attribute_prefix(node.name)
            return [(prefix, successor(prefix))]
    except _TooManyError:
        return None
    return None


def _rank(node: Node) -> int:
    if (isinstance(node, Compare) and node.op == "=") or isinstance(node, In):
        return 0
    return 2 if isinstance(node, And | Or | Not) else 1


def candidates(source: IndexSource, node: Node, limit: int | None) -> set[bytes] | None:
    """The workflows (ids, UTF-8) ``node`` may match, read from the index; ``None`` when it cannot be narrowed.
    Raises ``_TooManyError`` when they are more than ``limit``."""
    if not source.indexed:
        return None
    if isinstance(node, And):
        best: set[bytes] | None = None
        too_many = False
        for item in sorted(node.items, key=_rank):
            try:
                found = candidates(source, item, len(best) if best is not None else limit)
            except _TooManyError:
                too_many = True
                continue
            if found is not None:
                best = found if best is None else best & found
        if best is None and too_many:
            raise _TooManyError
        return best
    if isinstance(node, Or):
        union: set[bytes] = set()
        for item in node.items:
            found = candidates(source, item, limit)
            if found is None:
                return None
            union |= found
            if limit is not None and len(union) > limit:
                raise _TooManyError
        return union
    spans = ranges(node)
    if spans is None or isinstance(node, Not):
        return None
    prefix_length = len(attribute_prefix(node.name))
    found = set()
    for low, high in spans:
        for key in source.index_keys(low, high):
            found.add(workflow_of_key(key, prefix_length))
            if limit is not None and len(found) > limit:
                raise _TooManyError
    return found


def matching_runs(source: IndexSource, where: Node | None) -> Iterator[RunInfo]:
    """Every run passing ``where``: through the index where it narrows the filter, else every run."""
    found = None
    if where is not None:
        try:
            found = candidates(source, where, None)
        except _TooManyError:  # pragma: no cover - without a limit nothing is too many
            found = None
    if found is None:
        for run in source.runs():
            if matches(where, run_attributes(run)):
                yield run
        return
    for wf in sorted(found):
        candidate = source.run(wf)
        if candidate is not None and matches(where, run_attributes(candidate)):
            yield candidate


def list_page(source: IndexSource, query: Query, page_size: int, token: str | None) -> WorkflowPage:
    """One page of the runs matching ``query``, in its order, after the page ``token`` left off."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be an int from 1 to {MAX_PAGE_SIZE}, not {page_size!r}")
    if query.group_by:
        raise InvalidArgumentError("GROUP BY is for count_workflows, not list_workflows")
    order = query.order
    after = None if token is None else decode_token(token, query.text, len(order))
    narrowed = None
    if query.where is not None:
        try:
            narrowed = candidates(source, query.where, None)
        except _TooManyError:  # pragma: no cover
            narrowed = None
    if narrowed is None and source.indexed and len(order) == 1 and order[0].name in _ALWAYS:
        return _stream(source, query, page_size, after)
    runs = matching_runs(source, query.where)
    key = sort_key(order)
    rows = sorted(((order_values(run, order), run) for run in runs), key=lambda row: key(row[0]))
    start = 0 if after is None else bisect.bisect_right([key(row[0]) for row in rows], key(after))
    page = rows[start : start + page_size]
    more = start + page_size < len(rows)
    next_token = encode_token(page[-1][0], query.text) if more and page else None
    return WorkflowPage([run for _, run in page], next_token)


def _stream(source: IndexSource, query: Query, page_size: int, after: tuple[list[object], str] | None) -> WorkflowPage:
    """A page read in order from the index of the query's one order key (an attribute every run has)."""
    order_key = query.order[0]
    prefix = attribute_prefix(order_key.name)
    low, high = prefix, successor(prefix)
    if after is not None:
        encoded = encode_value(after[0][0])
        if encoded is None:
            raise InvalidArgumentError("next_page_token belongs to another query")
        position = prefix + encoded + after[1].encode()
        if order_key.descending:
            high = position
        else:
            low = position + b"\x00"
    found: list[RunInfo] = []
    for key in source.index_keys(low, high, reverse=order_key.descending):
        run = source.run(workflow_of_key(key, len(prefix)))
        if run is None or not matches(query.where, run_attributes(run)):
            continue
        if len(found) == page_size:
            last = found[-1]
            return WorkflowPage(found, encode_token(order_values(last, query.order), query.text))
        found.append(run)
    return WorkflowPage(found, None)


def count(source: IndexSource, query: Query) -> WorkflowCount:
    """How many runs match ``query`` (by status with ``GROUP BY Status``)."""
    if query.where is None and source.indexed:
        prefix = attribute_prefix("Status") + b"s"
        groups: dict[str, int] = {}
        for key in source.index_keys(prefix, successor(prefix)):
            end = key.index(b"\x00", len(prefix))
            status = key[len(prefix) : end].decode()
            groups[status] = groups.get(status, 0) + 1
        return WorkflowCount(sum(groups.values()), dict(sorted(groups.items())) if query.group_by else {})
    total = 0
    groups = {}
    for run in matching_runs(source, query.where):
        total += 1
        if query.group_by:
            groups[run.status.value] = groups.get(run.status.value, 0) + 1
    return WorkflowCount(total, dict(sorted(groups.items())))

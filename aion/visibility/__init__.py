"""Visibility: typed search attributes, the query language over runs, and the index that answers it.

* ``_schema``: the declared attribute types, the built-ins, the checks of values at start and upsert;
* ``_keys``: a run's attributes and their sortable index keys (what both stores write with each run record);
* ``_query``: the query language's parser (text -> typed :class:`Query`);
* ``_eval``: what a query means for one run (filter, order, page tokens);
* ``_exec``: running a query over a store's index snapshot (:class:`IndexSource`).

:func:`list_workflows` and :func:`count_workflows` run a query text over any store (``EventStore.visibility``); the
engine and the CLI (with or without a running engine) both call them. See ``docs/visibility.md``.
"""

from __future__ import annotations

from typing import Any

from aion.visibility._exec import MAX_PAGE_SIZE, IndexSource, WorkflowCount, WorkflowPage, count, list_page
from aion.visibility._keys import encode_value, index_keys, run_attributes
from aion.visibility._query import Query, parse_query
from aion.visibility._schema import ATTRIBUTE_TYPES, BUILTINS, SearchAttributeSchema, normalise, parse_datetime

__all__ = [
    "ATTRIBUTE_TYPES",
    "BUILTINS",
    "MAX_PAGE_SIZE",
    "IndexSource",
    "Query",
    "SearchAttributeSchema",
    "WorkflowCount",
    "WorkflowPage",
    "count_workflows",
    "encode_value",
    "index_keys",
    "list_workflows",
    "normalise",
    "parse_datetime",
    "parse_query",
    "run_attributes",
]


def _schema_of(store: Any, schema: SearchAttributeSchema | None) -> SearchAttributeSchema:
    return schema if schema is not None else SearchAttributeSchema(store.search_attribute_schema())


def list_workflows(
    store: Any,
    query: str | None = None,
    *,
    page_size: int = 100,
    next_page_token: str | None = None,
    schema: SearchAttributeSchema | None = None,
) -> WorkflowPage:
    """One page of the runs of ``store`` matching ``query`` (typed against ``schema``, by default the one the
    store keeps), in one read snapshot."""
    parsed = parse_query(query, _schema_of(store, schema))
    with store.visibility() as source:
        return list_page(source, parsed, page_size, next_page_token)


def count_workflows(
    store: Any, query: str | None = None, *, schema: SearchAttributeSchema | None = None
) -> WorkflowCount:
    """How many runs of ``store`` match ``query`` (by status with ``GROUP BY Status``), in one read snapshot."""
    parsed = parse_query(query, _schema_of(store, schema))
    with store.visibility() as source:
        return count(source, parsed)

"""Validating and normalising what callers give ``aion.Engine``'s methods, before the core is asked anything.

A start (``start_workflow``, ``signal_with_start``) becomes the workflow type's name, a checked workflow id, the
arguments as a checked payload list and the :class:`~aion.engine._options.StartOptions` that ``WorkflowStarted``
records; a signal's name and payload, a schedule's workflow type and ``list_workflows``' filters are checked too.
Anything bad raises a typed error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from aion import events as ev
from aion._codec import check_payload
from aion._definitions import workflow_type_name
from aion._durations import Duration, optional_seconds
from aion._ids import new_workflow_id, validate_workflow_id
from aion.engine._options import IdConflictPolicy, IdReusePolicy, StartOptions
from aion.engine._registry import Registry
from aion.errors import AionError, InvalidArgumentError
from aion.status import WorkflowStatus
from aion.visibility import SearchAttributeSchema


def start_request(
    registry: Registry,
    schema: SearchAttributeSchema,
    workflow: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    workflow_id: str | None,
    search_attributes: dict[str, Any] | None,
    execution_timeout: Duration | None,
    run_timeout: Duration | None,
    memo: Any = None,
) -> tuple[str, str, list[Any], StartOptions]:
    """Validate a start: the type name, the id, the arguments and the recorded options."""
    name = workflow_type_name(workflow)
    registry.workflow(name)
    workflow_id = new_workflow_id() if workflow_id is None else validate_workflow_id(workflow_id)
    arguments = list(args)
    check_payload(arguments, path=f"{name} input")
    if search_attributes is not None:
        if not isinstance(search_attributes, dict):
            raise InvalidArgumentError(f"search_attributes must be a dict, got {search_attributes!r}")
        check_payload(search_attributes, path="search_attributes")
    checked = schema.check(search_attributes)
    check_payload(memo, path="memo")
    options = StartOptions(
        search_attributes=checked,
        execution_timeout=optional_seconds(execution_timeout, "execution_timeout"),
        run_timeout=optional_seconds(run_timeout, "run_timeout"),
        memo=memo,
    )
    return name, workflow_id, arguments, options


def with_version_and_policies(
    registry: Registry,
    name: str,
    options: StartOptions,
    *,
    version: int | None,
    conflict: IdConflictPolicy,
    reuse: IdReusePolicy,
    request_id: str | None,
) -> StartOptions:
    """``options`` with a start's version of ``name`` (``UnknownWorkflowVersionError`` if it is not registered),
    policies and request id, checked."""
    if version is not None:
        registry.workflow_version(name, version)
        options = dataclasses.replace(options, version=version)
    if not isinstance(conflict, IdConflictPolicy):
        raise InvalidArgumentError(f"id_conflict_policy must be an aion.IdConflictPolicy, got {conflict!r}")
    if not isinstance(reuse, IdReusePolicy):
        raise InvalidArgumentError(f"id_reuse_policy must be an aion.IdReusePolicy, got {reuse!r}")
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        raise InvalidArgumentError(f"request_id must be a non-empty string, got {request_id!r}")
    return dataclasses.replace(options, id_conflict_policy=conflict, id_reuse_policy=reuse, request_id=request_id)


def check_signal(signal: object, payload: Any) -> None:
    """A signal's name (a non-empty string) and its payload, checked."""
    if not isinstance(signal, str) or not signal:
        raise InvalidArgumentError(f"signal name must be a non-empty string, got {signal!r}")
    check_payload(payload, path=f"signal {signal!r} payload")


def run_id_of_start(events: Sequence[ev.Event]) -> str:
    """The run id of the run whose start recorded ``events`` (its ``WorkflowStarted`` first)."""
    started = events[0]
    assert isinstance(started, ev.WorkflowStarted)
    return started.run_id


def scheduled_type(registry: Registry, workflow: str | Callable[..., Any]) -> str:
    """The name of the registered workflow type a schedule starts; ``InvalidArgumentError`` if unknown."""
    name = workflow_type_name(workflow)
    try:
        registry.workflow(name)
    except AionError as error:
        raise InvalidArgumentError(f"workflow: {error}") from None
    return name


def run_filter(
    status: WorkflowStatus | str | None, workflow_type: str | Callable[..., Any] | None
) -> tuple[WorkflowStatus | None, str | None]:
    """``list_workflows``' status and type filters, checked (an unknown status is named with the known ones)."""
    wanted = None
    if status is not None:
        try:
            wanted = WorkflowStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in WorkflowStatus)
            raise InvalidArgumentError(f"unknown status {status!r} (one of: {known})") from None
    type_name = None if workflow_type is None else workflow_type_name(workflow_type)
    return wanted, type_name

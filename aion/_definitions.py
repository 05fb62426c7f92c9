"""What ``@workflow.defn`` and ``@activity.defn`` attach to a function, and how names are resolved."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aion.errors import RegistrationError

_WORKFLOW_ATTR = "__aion_workflow__"
_ACTIVITY_ATTR = "__aion_activity__"


@dataclass(frozen=True)
class WorkflowDefinition:
    """A workflow type: its name, its ``async def`` function and its version (``None``: unversioned, which
    counts as version 1)."""

    name: str
    function: Callable[..., Any]
    version: int | None = None

    @property
    def number(self) -> int:
        """The version this definition runs (1 when it was declared without one)."""
        return self.version if self.version is not None else 1


@dataclass(frozen=True)
class ActivityDefinition:
    """An activity type: its name, its function, whether that function is ``async def``, and the task queue its
    calls go to unless a call names another."""

    name: str
    function: Callable[..., Any]
    is_async: bool
    task_queue: str = "default"


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise RegistrationError(f"{what} name must be a non-empty string of at most 256 characters, got {name!r}")
    return name


def define_workflow(function: Callable[..., Any], name: str | None, version: int | None = None) -> WorkflowDefinition:
    """Attach a :class:`WorkflowDefinition` to ``function`` (it must be ``async def``; ``version`` a positive
    int or ``None``)."""
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise RegistrationError(f"a workflow version must be a positive int, got {version!r}")
    if not inspect.iscoroutinefunction(function):
        raise RegistrationError(
            f"@workflow.defn needs an 'async def' function, but {getattr(function, '__qualname__', function)!r} "
            "is not a coroutine function"
        )
    definition = WorkflowDefinition(_check_name(name or function.__name__, "workflow"), function, version)
    setattr(function, _WORKFLOW_ATTR, definition)
    return definition


def define_activity(function: Callable[..., Any], name: str | None, task_queue: str = "default") -> ActivityDefinition:
    """Attach an :class:`ActivityDefinition` to ``function`` (sync or ``async def``)."""
    if not callable(function):
        raise RegistrationError(f"@activity.defn needs a function, got {function!r}")
    if not isinstance(task_queue, str) or not task_queue or len(task_queue) > 200 or "/" in task_queue:
        raise RegistrationError(
            f"task_queue must be a non-empty string of at most 200 characters without '/', got {task_queue!r}"
        )
    definition = ActivityDefinition(
        _check_name(name or function.__name__, "activity"), function, inspect.iscoroutinefunction(function), task_queue
    )
    setattr(function, _ACTIVITY_ATTR, definition)
    return definition


def workflow_definition(obj: object) -> WorkflowDefinition:
    """The definition a ``@workflow.defn`` function carries; ``RegistrationError`` if it has none."""
    definition = getattr(obj, _WORKFLOW_ATTR, None)
    if not isinstance(definition, WorkflowDefinition):
        raise RegistrationError(f"{obj!r} is not a workflow: decorate it with @workflow.defn")
    return definition


def activity_definition(obj: object) -> ActivityDefinition:
    """The definition an ``@activity.defn`` function carries; ``RegistrationError`` if it has none."""
    definition = getattr(obj, _ACTIVITY_ATTR, None)
    if not isinstance(definition, ActivityDefinition):
        raise RegistrationError(f"{obj!r} is not an activity: decorate it with @activity.defn")
    return definition


def workflow_type_name(workflow: str | Callable[..., Any]) -> str:
    """The type name of ``workflow``, given as a name or as a decorated function."""
    return workflow if isinstance(workflow, str) else workflow_definition(workflow).name


def activity_type_name(activity: str | Callable[..., Any]) -> str:
    """The type name of ``activity``, given as a name or as a decorated function."""
    return activity if isinstance(activity, str) else activity_definition(activity).name


def version_of_run(workflow_version: str | None) -> int:
    """The version a run recorded in ``WorkflowStarted.workflow_version`` (``None`` is version 1)."""
    if workflow_version is None:
        return 1
    try:
        return int(workflow_version)
    except ValueError:
        return 0  # no definition has version 0: the run is blocked for want of its version

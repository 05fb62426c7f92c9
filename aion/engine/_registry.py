"""The workflow and activity types an engine runs, and how its child processes find them.

The engine installs its registry in this module before it forks the zygote, so every workflow host and
activity worker (all forked from the zygote) inherits it, including functions defined in ``__main__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aion._definitions import ActivityDefinition, WorkflowDefinition, activity_definition, workflow_definition
from aion.errors import (
    InvalidArgumentError,
    RegistrationError,
    UnknownActivityTypeError,
    UnknownWorkflowTypeError,
    UnknownWorkflowVersionError,
)


@dataclass
class Registry:
    """Workflow and activity definitions by type name (``workflows`` holds each type's highest version,
    ``versions`` every registered version of it)."""

    workflows: dict[str, WorkflowDefinition] = field(default_factory=dict)
    activities: dict[str, ActivityDefinition] = field(default_factory=dict)
    versions: dict[str, dict[int, WorkflowDefinition]] = field(default_factory=dict)
    #: The task queues the engine declares (``Engine(task_queues=...)``).
    task_queues: frozenset[str] = frozenset({"default"})

    @classmethod
    def build(cls, workflows: Iterable[Callable[..., Any]], activities: Iterable[Callable[..., Any]]) -> Registry:
        """A registry of decorated functions; ``RegistrationError`` on an undecorated one or a duplicate name."""
        registry = cls()
        for function in workflows:
            definition = workflow_definition(function)
            versions = registry.versions.setdefault(definition.name, {})
            if definition.number in versions:
                raise RegistrationError(
                    f"workflow type {definition.name!r} version {definition.number} is registered twice"
                )
            versions[definition.number] = definition
            registry.workflows[definition.name] = versions[max(versions)]
        for function in activities:
            activity = activity_definition(function)
            if activity.name in registry.activities:
                raise RegistrationError(f"activity type {activity.name!r} is registered twice")
            registry.activities[activity.name] = activity
        return registry

    def workflow(self, name: str) -> WorkflowDefinition:
        """The workflow type ``name``; ``UnknownWorkflowTypeError`` naming the known ones otherwise."""
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise UnknownWorkflowTypeError(f"unknown workflow type {name!r} (registered: {known})") from None

    def workflow_version(self, name: str, version: int | None) -> WorkflowDefinition:
        """Version ``version`` of workflow type ``name`` (its highest for ``None``);
        ``UnknownWorkflowTypeError`` or ``UnknownWorkflowVersionError`` naming what is registered otherwise."""
        definition = self.workflow(name)
        if version is None:
            return definition
        found = self.versions.get(name, {}).get(version)
        if found is None:
            known = ", ".join(str(number) for number in sorted(self.versions.get(name, {})))
            raise UnknownWorkflowVersionError(
                f"workflow type {name!r} has no version {version} registered (registered: {known})"
            )
        return found

    def activity(self, name: str) -> ActivityDefinition:
        """The activity type ``name``; ``UnknownActivityTypeError`` naming the known ones otherwise."""
        try:
            return self.activities[name]
        except KeyError:
            known = ", ".join(sorted(self.activities)) or "none"
            raise UnknownActivityTypeError(f"unknown activity type {name!r} (registered: {known})") from None

    def task_queue(self, name: str) -> str:
        """``name`` if the engine declares that task queue; ``InvalidArgumentError`` naming the declared ones."""
        if name not in self.task_queues:
            known = ", ".join(sorted(self.task_queues))
            raise InvalidArgumentError(f"task queue {name!r} is not declared by the engine (declared: {known})")
        return name

    def modules(self) -> list[str]:
        """The modules that define the registered functions (preloaded in the zygote)."""
        workflows = [d.function for versions in self.versions.values() for d in versions.values()]
        functions = workflows + [d.function for d in self.activities.values()]
        return sorted({f.__module__ for f in functions if f.__module__ and f.__module__ != "__main__"})


_installed: Registry | None = None


def install(registry: Registry) -> None:
    """Make ``registry`` the one child processes forked from now on use."""
    global _installed
    _installed = registry


def installed() -> Registry:
    """The registry installed by the engine that forked this process."""
    if _installed is None:
        raise RuntimeError("no aion registry is installed in this process")
    return _installed

"""``aion.testing``: test your own workflows and activities.

- :class:`WorkflowEnvironment`: a real engine on a virtual clock that skips ahead when runs wait only on time;
- :class:`ActivityEnvironment`: an activity run alone, with its ``activity.info()``, heartbeats and cancellation;
- :class:`Replayer`: recorded histories replayed against (new) workflow code, without an engine.

With pytest, the fixtures ``aion_env``, ``aion_activity_env`` and ``aion_replayer`` come with the package (a
pytest plugin): see ``docs/testing.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aion.testing._activity_env import ActivityEnvironment
    from aion.testing._replayer import Replayer, history_from_json, load_history
    from aion.testing._workflow_env import TimeSkippingHandle, WorkflowEnvironment

# Loaded on first use: the pytest plugin (``aion.testing.pytest_plugin``) is imported by every pytest run in an
# environment where aion is installed, and must not load the engine for test suites that do not use it.
_LAZY = {
    "ActivityEnvironment": "aion.testing._activity_env",
    "Replayer": "aion.testing._replayer",
    "history_from_json": "aion.testing._replayer",
    "load_history": "aion.testing._replayer",
    "TimeSkippingHandle": "aion.testing._workflow_env",
    "WorkflowEnvironment": "aion.testing._workflow_env",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aion.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ActivityEnvironment",
    "Replayer",
    "TimeSkippingHandle",
    "WorkflowEnvironment",
    "history_from_json",
    "load_history",
]

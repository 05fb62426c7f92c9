"""``aion.testing``: test your own workflows and activities.

- :class:`WorkflowEnvironment`: a real engine on a virtual clock that skips ahead when runs wait only on time;
- :class:`ActivityEnvironment`: an activity run alone, with its ``activity.info()``, heartbeats and cancellation;
- :class:`Replayer`: recorded histories replayed against (new) workflow code, without an engine.

With pytest, the fixtures ``aion_env``, ``aion_activity_env`` and ``aion_replayer`` come with the package (a
pytest plugin): see ``docs/testing.md``.
"""

from __future__ import annotations

from aion.testing._activity_env import ActivityEnvironment
from aion.testing._replayer import Replayer, history_from_json, load_history
from aion.testing._workflow_env import TimeSkippingHandle, WorkflowEnvironment

__all__ = [
    "ActivityEnvironment",
    "Replayer",
    "TimeSkippingHandle",
    "WorkflowEnvironment",
    "history_from_json",
    "load_history",
]

"""The pytest plugin of ``aion.testing`` (registered as the ``pytest11`` entry point ``aion``).

Fixtures:

- ``aion_env``: a factory of :class:`~aion.testing.WorkflowEnvironment` (same arguments); every environment it
  made is stopped when the test ends, passed or failed;
- ``aion_activity_env``: a fresh :class:`~aion.testing.ActivityEnvironment`;
- ``aion_replayer``: a factory of :class:`~aion.testing.Replayer` (same arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aion.testing import ActivityEnvironment, Replayer, WorkflowEnvironment


@pytest.fixture
def aion_env() -> Iterator[Callable[..., WorkflowEnvironment]]:
    """Make started ``WorkflowEnvironment``s: ``env = aion_env(workflows=[...], activities=[...])``."""
    from aion.testing import WorkflowEnvironment  # noqa: PLC0415 - the engine loads only for tests that use it

    made: list[WorkflowEnvironment] = []

    def make(*args: Any, **kwargs: Any) -> WorkflowEnvironment:
        env = WorkflowEnvironment(*args, **kwargs)
        made.append(env)
        env.start()
        return env

    try:
        yield make
    finally:
        for env in reversed(made):
            env.stop()


@pytest.fixture
def aion_activity_env() -> ActivityEnvironment:
    """An ``ActivityEnvironment`` with the default info (attempt 1)."""
    from aion.testing import ActivityEnvironment  # noqa: PLC0415

    return ActivityEnvironment()


@pytest.fixture
def aion_replayer() -> Callable[..., Replayer]:
    """Make ``Replayer``s: ``aion_replayer(workflows=[...]).replay(history)``."""
    from aion.testing import Replayer  # noqa: PLC0415

    return Replayer

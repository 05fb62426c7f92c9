"""Chaos soak: workflows of every shape under random SIGKILLs of workflow processes, activity workers and the
whole engine, then checks that every guarantee held (see :mod:`tests.chaos.checker` for the exact checks).

* ``pytest -m chaos tests/chaos`` runs the CI size (a 45 s kill phase, about a minute in all);
* ``python -m tests.chaos --minutes 30`` runs rounds for 30 minutes, each with its own seed;
* ``python -m tests.chaos --seed S --kill-seconds K`` (or ``AION_CHAOS_SEED=S pytest -m chaos tests/chaos``)
  replays a seed: the same seed and size give the same plan (workflows, signals, cancellations, kill schedule).

Modules: :mod:`~tests.chaos.plan` (the seed's plan), :mod:`~tests.chaos.flows` (workflows and activities),
:mod:`~tests.chaos.engine_proc` (one engine incarnation), :mod:`~tests.chaos.driver` (incarnations, the killer,
the phases), :mod:`~tests.chaos.checker` (the checks).
"""

from __future__ import annotations

import os
import secrets

#: The kill phase of the CI size, in seconds.
CI_KILL_SECONDS = 45.0


def seed_from_env() -> int:
    """``$AION_CHAOS_SEED`` if set, else a fresh random seed."""
    value = os.environ.get("AION_CHAOS_SEED")
    return int(value) if value else secrets.randbelow(2**32)

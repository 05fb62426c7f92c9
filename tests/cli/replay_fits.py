"""``aion replay --module tests.cli.replay_fits``: the "order" change behind a patch, which fits old runs."""

from tests.engine.versioning_flows import note, order_patched, other_note

__all__ = ["note", "order_patched", "other_note"]

"""``aion replay --module tests.cli.replay_diverges``: the "order" change without a patch, which diverges."""

from tests.engine.versioning_flows import note, order_changed, other_note

__all__ = ["note", "order_changed", "other_note"]

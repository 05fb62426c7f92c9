"""User types the payload tests send through real runs (importable by workflow processes), and the codec the
codec tests give the engine and the CLI (``--codec tests.api.payload_types:CODEC``)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pydantic

from aion.codec import zlib_codec

CODEC = zlib_codec()


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 3


class Item(pydantic.BaseModel):
    sku: str
    price: Decimal
    colour: Colour


@dataclass(frozen=True)
class Order:
    order_id: uuid.UUID
    placed: datetime
    due: date
    window: timedelta
    level: Level
    total: Decimal
    items: list[Item]


def sample() -> Order:
    """An order holding every type the converter round-trips."""
    return Order(
        order_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        placed=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        due=date(2025, 3, 8),
        window=timedelta(days=2, seconds=5, microseconds=7),
        level=Level.HIGH,
        total=Decimal("19.90"),
        items=[Item(sku="a-1", price=Decimal("9.95"), colour=Colour.BLUE)] * 2,
    )

"""One sample instance of any event type, every field set (optional ones too), built from its type hints."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime
from typing import Any

from aion import events as ev

AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _value(name: str, hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint is str:
        return f"{name}-1"
    if hint is bool:
        return True
    if hint is int:
        return 3
    if hint is float:
        return 2.5
    if hint is datetime:
        return AT
    if hint is ev.Failure:
        return ev.Failure("ValueError", "bad", "Traceback...", {"k": 1}, True)
    if typing.get_origin(hint) is dict:
        return {name: [1, "two", None]}
    return {"any": name, "n": [1, 2.5]}  # Any


def sample_event(cls: type[ev.Event]) -> ev.Event:
    """``cls`` with every init field set to a value derived from its name and type (seq 7, recorded at AT)."""
    hints = typing.get_type_hints(cls)
    kwargs = {field.name: _value(field.name, hints[field.name]) for field in dataclasses.fields(cls) if field.init}
    kwargs.update(seq=7, recorded_at=AT)
    return cls(**kwargs)

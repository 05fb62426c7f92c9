"""The msgpack codec: payload and event round trips, refusals with paths, and corrupt input."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math
import types
import typing
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aion._codec import (
    DEFAULT_PAYLOAD_LIMIT,
    MAX_PAYLOAD_DEPTH,
    check_payload,
    decode_event,
    decode_payload,
    encode_event,
    encode_event_body,
    encode_payload,
    encode_time,
    stamp_event,
)
from aion.errors import (
    CorruptEventError,
    CorruptPayloadError,
    PayloadError,
    PayloadTooLargeError,
    StoreError,
)
from aion.events import (
    EVENT_TYPES,
    UNSET_TIME,
    ActivityFailed,
    ActivityScheduled,
    Event,
    Failure,
    TimerFired,
    TimerStarted,
    WorkflowStarted,
)

SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# --- test dataclasses (module level, so they are importable by "module:qualname") ---------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Line:
    start: Point
    end: Point
    label: str = ""
    tags: Any = None


@dataclasses.dataclass
class WithDerived:
    base: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = self.base * 2


class Colour(enum.IntEnum):
    RED = 1


# --- strategies ---------------------------------------------------------------------------------------------

fixed_offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
utc_datetimes = st.datetimes(timezones=st.just(UTC))

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.datetimes(),
    st.datetimes(timezones=fixed_offsets),
    st.dates(),
    st.decimals(allow_nan=False),
    st.uuids(),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
        st.builds(
            Line,
            start=st.builds(Point, st.integers(), st.floats(allow_nan=False)),
            end=st.builds(Point, st.integers(), st.floats(allow_nan=False)),
            label=st.text(max_size=5),
            tags=children,
        ),
        st.builds(Failure, type=st.text(), message=st.text(), traceback=st.none() | st.text(), details=children),
    )


payloads: st.SearchStrategy[Any] = st.recursive(scalars, _containers, max_leaves=20)

failures = st.builds(
    Failure,
    type=st.text(),
    message=st.text(),
    traceback=st.none() | st.text(),
    details=payloads,
    non_retryable=st.booleans(),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for an event field's type hint, built generically."""
    if hint is Any:
        return payloads
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(strategy_for(arg) for arg in typing.get_args(hint)))
    if origin is dict:
        key, value = typing.get_args(hint)
        return st.dictionaries(strategy_for(key), strategy_for(value), max_size=4)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        str: st.text(),
        int: st.integers(min_value=0, max_value=2**40),
        float: st.floats(allow_nan=False),
        bool: st.booleans(),
        datetime: utc_datetimes,
        Failure: failures,
    }
    return simple[hint]


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    """``st.builds`` over every init field of an event class."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls) if field.init}
    return st.builds(cls, **fields)


def same(left: Any, right: Any) -> bool:
    """Deep equality that also checks exact types, datetime offsets, -0.0 and Decimal spelling."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, Decimal):
        return str(left) == str(right)
    if isinstance(left, datetime):
        return bool(left == right and left.utcoffset() == right.utcoffset() and left.fold == right.fold)
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if dataclasses.is_dataclass(left):
        return all(same(getattr(left, f.name), getattr(right, f.name)) for f in dataclasses.fields(left))
    return bool(left == right)


def raw(record: Any) -> bytes:
    """The bytes of a hand-built event map (the event encoding is the payload encoding of this map)."""
    return encode_payload(record, limit=None)


# --- payload round trips ------------------------------------------------------------------------------------


@SETTINGS
@given(payloads)
def test_payload_round_trip(value: Any) -> None:
    assert same(decode_payload(encode_payload(value, limit=None)), value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        10**100,
        -(10**100),
        1.5,
        -0.0,
        math.inf,
        "",
        "héllo",
        b"",
        b"\x00\xff",
        [],
        (),
        (1,),
        ((1, 2), [3, (4,)]),
        {},
        {"a": {"b": [1, (2, {"c": None})]}},
        datetime(2024, 2, 29, 12, 30, 1, 123456),
        datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 2, 29, 12, 30, tzinfo=timezone(timedelta(hours=-3, seconds=7, microseconds=9))),
        datetime(2021, 11, 7, 1, 30, fold=1),
        date(1, 1, 1),
        Decimal("1.10"),
        Decimal("-0"),
        Decimal("1E+400"),
        uuid.UUID(int=0),
        uuid.uuid4(),
        Point(1, 2.5),
        Line(Point(0, 0.0), Point(1, 1.0), "l", tags=(1, [Point(2, 3.0)])),
        Failure("ValueError", "bad", details={"x": 1}),
    ],
    ids=repr,
)
def test_payload_examples_round_trip(value: Any) -> None:
    assert same(decode_payload(encode_payload(value)), value)


def test_utc_decodes_as_the_utc_singleton() -> None:
    decoded = decode_payload(encode_payload(datetime(2024, 1, 1, tzinfo=UTC)))
    assert decoded.tzinfo is UTC


def test_float_nan_round_trips() -> None:
    assert math.isnan(decode_payload(encode_payload(math.nan)))


def test_dataclass_with_init_false_field() -> None:
    value = WithDerived(4)
    decoded = decode_payload(encode_payload(value))
    assert type(decoded) is WithDerived
    assert decoded == value
    assert decoded.doubled == 8


def test_unimportable_dataclass_decodes_to_dict() -> None:
    @dataclasses.dataclass
    class Local:
        a: int
        b: Any

    decoded = decode_payload(encode_payload(Local(1, (2, "x"))))
    qualname = Local.__qualname__
    assert decoded == {"__dataclass__": f"{__name__}:{qualname}", "a": 1, "b": (2, "x")}


def test_dataclass_whose_fields_changed_decodes_to_dict() -> None:
    data = encode_payload(Point(1, 2.0))
    ext = msgpack.unpackb(data)
    name, fields = msgpack.unpackb(ext.data)
    fields["z"] = 3
    forged = msgpack.packb(msgpack.ExtType(ext.code, msgpack.packb([name, fields])))
    assert decode_payload(forged) == {"__dataclass__": f"{__name__}:Point", "x": 1, "y": 2.0, "z": 3}


@dataclasses.dataclass
class Grown:
    """``Point`` as it might be later: a field added, with a default, and one added without."""

    x: int
    y: float
    label: str = "none"
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class GrownWithoutDefault:
    x: int
    y: float
    z: int


def _stored_as(cls: type, value: Any) -> bytes:
    """``value``'s encoding, as if it had been stored as an instance of ``cls``."""
    ext = msgpack.unpackb(encode_payload(value))
    _, fields = msgpack.unpackb(ext.data)
    return msgpack.packb(msgpack.ExtType(ext.code, msgpack.packb([f"{cls.__module__}:{cls.__qualname__}", fields])))


def test_a_dataclass_that_gained_fields_with_defaults_takes_the_defaults() -> None:
    assert decode_payload(_stored_as(Grown, Point(1, 2.0))) == Grown(1, 2.0, "none", [])


def test_a_dataclass_that_gained_a_field_without_default_decodes_to_dict() -> None:
    name = f"{__name__}:GrownWithoutDefault"
    assert decode_payload(_stored_as(GrownWithoutDefault, Point(1, 2.0))) == {"__dataclass__": name, "x": 1, "y": 2.0}


def test_missing_module_decodes_to_dict() -> None:
    forged = msgpack.packb(msgpack.ExtType(6, msgpack.packb(["no_such_module_xyz:Thing", {"a": 1}])))
    assert decode_payload(forged) == {"__dataclass__": "no_such_module_xyz:Thing", "a": 1}


def test_non_dataclass_target_decodes_to_dict() -> None:
    forged = msgpack.packb(msgpack.ExtType(6, msgpack.packb(["collections:OrderedDict", {"a": 1}])))
    assert decode_payload(forged) == {"__dataclass__": "collections:OrderedDict", "a": 1}


# --- payload refusals ---------------------------------------------------------------------------------------


def test_error_path_example_exactly() -> None:
    order = {"items": [{"price": 1}, {"price": 2}, {"price": 3}, {"price": object()}]}
    with pytest.raises(PayloadError) as caught:
        encode_payload(order, path="order")
    assert str(caught.value) == "order.items[3].price: cannot serialise <class 'object'>"
    assert caught.value.code == "payload_error"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "value: cannot serialise <class 'object'>"),
        ({1, 2}, "value: cannot serialise <class 'set'>"),
        ([1, (2, frozenset())], "value[1][1]: cannot serialise <class 'frozenset'>"),
        ({"a b": {"c": object}}, "value['a b'].c: cannot serialise <class 'type'>"),
        (
            Line(Point(1, 1.0), Point(2, 2.0), tags=[b"", lambda: 0]),
            "value.tags[1]: cannot serialise <class 'function'>",
        ),
        (Failure("T", "m", details={"k": ...}), "value.details.k: cannot serialise <class 'ellipsis'>"),
        (OrderedDict(a=1), "value: cannot serialise <class 'collections.OrderedDict'>"),
        (Point, "value: cannot serialise <class 'type'>"),
    ],
    ids=repr,
)
def test_refused_values_name_their_path(value: Any, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        encode_payload(value)
    assert str(caught.value) == message


@pytest.mark.parametrize("key", [1, None, b"k", (1, 2), 1.5])
def test_non_str_dict_keys_are_refused_with_path(key: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        encode_payload({"outer": [{key: 1}]}, path="args")
    text = str(caught.value)
    assert text.startswith("args.outer[0]: dict key ")
    assert repr(key) in text


def test_check_payload_returns_encoded_size() -> None:
    value = {"a": [1, 2, (3, "x")], "when": datetime(2024, 1, 1, tzinfo=UTC)}
    assert check_payload(value) == len(encode_payload(value))


def test_oversize_payload_is_refused() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        check_payload({"blob": b"x" * 200}, path="input", limit=100)
    error = caught.value
    assert error.limit == 100
    assert error.size > 100
    assert error.code == "payload_too_large"
    assert isinstance(error, PayloadError)
    assert str(error).startswith("input is ")


def test_default_limit() -> None:
    assert DEFAULT_PAYLOAD_LIMIT == 2 * 1024 * 1024
    check_payload(b"x" * (DEFAULT_PAYLOAD_LIMIT - 10))
    with pytest.raises(PayloadTooLargeError):
        check_payload(b"x" * DEFAULT_PAYLOAD_LIMIT)
    assert check_payload(b"x" * DEFAULT_PAYLOAD_LIMIT, limit=None) > DEFAULT_PAYLOAD_LIMIT


def test_too_deep_nesting_is_a_payload_error() -> None:
    value: Any = []
    for level in range(MAX_PAYLOAD_DEPTH - 1):
        wrappers: list[Callable[[Any], Any]] = [
            lambda v: (v,),
            lambda v: {"k": v},
            lambda v: Line(Point(1, 1.0), Point(2, 2.0), tags=v),
            lambda v: Failure("T", "m", details=v),
        ]
        value = wrappers[level % 4](value)
    assert same(decode_payload(encode_payload(value)), value)
    for _ in range(5000):
        value = [value]
    with pytest.raises(PayloadError, match=f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"):
        encode_payload(value)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xd4\x63\x00", b"\xa2\xff\xfe", b"\x01\x02"])
def test_corrupt_payload_bytes(data: bytes) -> None:
    with pytest.raises(CorruptPayloadError) as caught:
        decode_payload(data)
    assert caught.value.code == "corrupt_payload"
    assert isinstance(caught.value, PayloadError)


@SETTINGS
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_corrupt_payload(data: bytes) -> None:
    with contextlib.suppress(CorruptPayloadError):
        decode_payload(data)


# --- events -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
@SETTINGS
@given(data=st.data())
def test_event_round_trip(name: str, data: st.DataObject) -> None:
    event = data.draw(event_strategy(EVENT_TYPES[name]))
    decoded = decode_event(encode_event(event))
    assert type(decoded) is type(event)
    assert same(decoded, event)


def test_event_map_layout() -> None:
    event = TimerStarted(workflow_id="w", seq=4, timer_id=2, fire_at=datetime(2024, 1, 1, tzinfo=UTC))
    record = msgpack.unpackb(encode_event(event))
    assert record["type"] == "TimerStarted"
    assert record["v"] == TimerStarted.version
    assert set(record) == {"type", "v", "workflow_id", "seq", "recorded_at", "timer_id", "fire_at", "waiting_for"}


def test_failure_inside_an_event() -> None:
    failure = Failure("KeyError", "'x'", traceback="Traceback...", details=(1, Point(1, 2.0)), non_retryable=True)
    event = ActivityFailed(workflow_id="w", activity_id=1, failure=failure, attempt=3, retryable=False)
    assert decode_event(encode_event(event)) == event


def test_event_with_bad_payload_names_the_field() -> None:
    event = ActivityScheduled(workflow_id="w", activity_id=1, activity_type="t", input={"items": [object()]})
    with pytest.raises(PayloadError) as caught:
        encode_event(event)
    assert str(caught.value) == "ActivityScheduled.input.items[0]: cannot serialise <class 'object'>"


def test_old_version_missing_fields_take_defaults() -> None:
    data = raw(
        {
            "type": "WorkflowStarted",
            "v": 1,
            "workflow_id": "w",
            "workflow_type": "T",
            "input": [1],
            "run_id": "r",
        }
    )
    event = decode_event(data)
    assert event == WorkflowStarted(workflow_id="w", workflow_type="T", input=[1], run_id="r")
    assert isinstance(event, WorkflowStarted)
    assert event.seq == 0
    assert event.recorded_at == UNSET_TIME
    assert event.search_attributes == {}
    assert event.attempt == 1


def test_older_version_of_a_bumped_event_decodes() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class _VersionedProbe(Event):
        version: typing.ClassVar[int] = 2
        count: int
        note: str = "none"

    try:
        old = raw({"type": "_VersionedProbe", "v": 1, "workflow_id": "w", "seq": 3, "count": 5})
        assert decode_event(old) == _VersionedProbe(workflow_id="w", seq=3, count=5, note="none")
        new = _VersionedProbe(workflow_id="w", seq=4, count=6, note="hi")
        assert decode_event(encode_event(new)) == new
        future = raw({"type": "_VersionedProbe", "v": 3, "workflow_id": "w", "count": 5})
        with pytest.raises(CorruptEventError, match="version 3 is newer"):
            decode_event(future)
    finally:
        del EVENT_TYPES["_VersionedProbe"]


def test_future_version_is_refused() -> None:
    with pytest.raises(CorruptEventError, match=r"TimerFired.*version 3 is newer.*2") as caught:
        decode_event(raw({"type": "TimerFired", "v": 3, "workflow_id": "w", "timer_id": 1}))
    assert isinstance(caught.value, StoreError)
    assert caught.value.code == "corrupt_event"


def test_unknown_type_is_refused() -> None:
    with pytest.raises(CorruptEventError, match="unknown event type 'NoSuchEvent'"):
        decode_event(raw({"type": "NoSuchEvent", "v": 1, "workflow_id": "w"}))


def _timer_fired(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "TimerFired", "v": 1, "workflow_id": "w", "seq": 1, "timer_id": 1}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (_timer_fired(extra=1), r"unknown fields \['extra'\]"),
        (_timer_fired(timer_id=_DROP), "required field 'timer_id' is missing"),
        (_timer_fired(timer_id="1"), "field 'timer_id' should be int"),
        (_timer_fired(timer_id=True), "field 'timer_id' should be int"),
        (_timer_fired(workflow_id=None), "field 'workflow_id' should be str"),
        (_timer_fired(recorded_at="2024"), "field 'recorded_at' should be datetime"),
        (_timer_fired(v=0), "bad format version 0"),
        (_timer_fired(v="1"), "bad format version '1'"),
        (_timer_fired(v=_DROP), "bad format version None"),
        (_timer_fired(type=_DROP), "no type name"),
        (_timer_fired(type=7), "no type name"),
        (_timer_fired(type="Failure"), "unknown event type 'Failure'"),
        (_timer_fired(type="Event"), "unknown event type 'Event'"),
    ],
    ids=repr,
)
def test_malformed_event_maps(record: dict[str, Any], match: str) -> None:
    with pytest.raises(CorruptEventError, match=match):
        decode_event(raw(record))


def test_failure_field_of_wrong_type() -> None:
    record = {
        "type": "ActivityFailed",
        "v": 1,
        "workflow_id": "w",
        "activity_id": 1,
        "failure": "boom",
        "attempt": 1,
        "retryable": True,
    }
    with pytest.raises(CorruptEventError, match="field 'failure' should be Failure"):
        decode_event(raw(record))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x93\x01\x02\x03",
        raw([1, 2]),
        b"\x81\x01\x02",
        encode_payload("TimerFired"),
        b"\xa2\xff\xfe",
    ],
    ids=repr,
)
def test_corrupt_event_bytes(data: bytes) -> None:
    with pytest.raises(CorruptEventError):
        decode_event(data)


def test_trailing_bytes_are_corrupt() -> None:
    data = encode_event(TimerFired(workflow_id="w", timer_id=1))
    with pytest.raises(CorruptEventError):
        decode_event(data + b"\x00")


@SETTINGS
@given(data=st.data())
def test_every_truncation_is_corrupt(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(EVENT_TYPES)))
    encoded = encode_event(data.draw(event_strategy(EVENT_TYPES[name])))
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(CorruptEventError):
        decode_event(encoded[:cut])


@SETTINGS
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_corrupt_event(data: bytes) -> None:
    try:
        decoded = decode_event(data)
    except CorruptEventError:
        return
    assert isinstance(decoded, Event)


def test_unregistered_event_class_is_refused() -> None:
    class NotAnEvent:
        pass

    encode: Callable[[Any], bytes] = encode_event
    with pytest.raises(PayloadError, match="not a registered event type"):
        encode(NotAnEvent())


# --- bodies encoded ahead and stamped later (the recorder's fast path) --------------------------------------


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
@SETTINGS
@given(data=st.data())
def test_stamped_body_is_the_event_encoding(name: str, data: st.DataObject) -> None:
    event = data.draw(event_strategy(EVENT_TYPES[name]))
    seq = data.draw(st.integers(min_value=0, max_value=2**64 - 1))
    when = data.draw(st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=fixed_offsets))
    stamped = dataclasses.replace(event, seq=seq, recorded_at=when)
    encoded = stamp_event(encode_event_body(event), seq, encode_time(when))
    assert encoded == encode_event(stamped)
    assert same(decode_event(encoded), stamped)


def test_stamped_event_map_layout() -> None:
    event = TimerStarted(workflow_id="w", timer_id=2, fire_at=datetime(2024, 1, 1, tzinfo=UTC))
    when = datetime(2024, 5, 1, tzinfo=UTC)
    record = msgpack.unpackb(stamp_event(encode_event_body(event), 300, encode_time(when)), timestamp=0)
    assert set(record) == {"type", "v", "workflow_id", "seq", "recorded_at", "timer_id", "fire_at", "waiting_for"}
    assert record["seq"] == 300


@pytest.mark.parametrize("seq", [0, 1, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 2**32, 2**64 - 1])
def test_stamped_seq_is_msgpacks_shortest_form(seq: int) -> None:
    event = TimerFired(workflow_id="w", timer_id=1)
    when = datetime(2024, 5, 1, tzinfo=UTC)
    encoded = stamp_event(encode_event_body(event), seq, encode_time(when))
    assert encoded == encode_event(dataclasses.replace(event, seq=seq, recorded_at=when))
    assert msgpack.packb("seq") + msgpack.packb(seq) in encoded


@pytest.mark.parametrize("seq", [-1, 2**64, True, 1.0, object()])
def test_odd_stamps_fall_back_to_the_checked_map(seq: Any) -> None:
    event = TimerFired(workflow_id="w", seq=seq, timer_id=1)
    if type(seq) is object:
        with pytest.raises(PayloadError, match=r"^TimerFired\.seq: cannot serialise <class 'object'>$"):
            encode_event(event)
        return
    data = encode_event(event)
    if type(seq) is int:
        assert decode_event(data) == event
    else:
        with pytest.raises(CorruptEventError):
            decode_event(data)


def test_bad_stamp_time_is_named() -> None:
    event: Any = TimerFired(workflow_id="w", seq=1, timer_id=1, recorded_at=object())
    with pytest.raises(PayloadError, match=r"^TimerFired\.recorded_at: cannot serialise <class 'object'>$"):
        encode_event(event)
    with pytest.raises(CorruptEventError, match="recorded_at"):
        decode_event(encode_event(dataclasses.replace(event, recorded_at="now")))
    with pytest.raises(PayloadError):
        encode_time(event.recorded_at)
    with pytest.raises(PayloadError):
        stamp_event(encode_event_body(event), -1, encode_time(datetime.now(UTC)))


def test_body_refusals_name_the_field() -> None:
    event = ActivityScheduled(workflow_id="w", activity_id=1, activity_type="t", input={"items": [object()]})
    with pytest.raises(PayloadError) as caught:
        encode_event_body(event)
    assert str(caught.value) == "ActivityScheduled.input.items[0]: cannot serialise <class 'object'>"


def test_many_fields_use_a_map16_header() -> None:
    started = WorkflowStarted(workflow_id="w", workflow_type="T", input=None, run_id=str(uuid.uuid4()), seq=7)
    data = encode_event(started)
    assert data[0] == 0xDE
    assert decode_event(data) == started


def test_encode_time_is_remembered_per_object() -> None:
    when = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert encode_time(when) is encode_time(when)
    assert encode_time(datetime(2024, 1, 1, 12, tzinfo=UTC)) == encode_time(when)
    assert decode_payload(encode_time(when)) == when


def test_nested_extensions_from_many_threads() -> None:
    import threading

    value = {"t": (1, (2, Point(3, 4.0)), [datetime(2024, 1, 1, tzinfo=UTC)]), "f": Failure("E", "m", details=(5,))}
    expected = encode_payload(value)
    results: list[bytes] = []

    def work() -> None:
        results.extend(encode_payload(value) for _ in range(200))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 800
    assert same(decode_payload(expected), value)

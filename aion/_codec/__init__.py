"""The msgpack codec of aion: user payloads and history events.

Payloads
========
:func:`encode_payload` accepts, recursively:

* ``None``, ``bool``, ``float``, ``str``, ``bytes`` and ``list`` (native msgpack);
* ``int`` of any size: ints in msgpack's range (``-2**63 .. 2**64-1``) are native, larger ones are stored as
  an extension (signed big-endian bytes) and come back as the same ``int``;
* ``dict`` whose keys are all ``str`` (any other key is refused, naming the path);
* ``tuple`` (an extension, so it decodes as a ``tuple``, not a ``list``);
* ``datetime``: naive stays naive; an aware one keeps its UTC offset and ``fold`` and decodes with a
  fixed-offset ``datetime.timezone`` (UTC decodes as ``datetime.UTC``; a ``zoneinfo`` name is not kept);
* ``date``, ``timedelta``, ``Decimal`` (as its exact string) and ``UUID`` (as 16 bytes);
* enum members (``Enum``, ``IntEnum``, ``StrEnum``...), stored as ``"module:qualname"`` plus the member's value,
  decoded to the same member (to a ``{"__enum__": name, "value": value}`` map if the class cannot be found);
* pydantic models (pydantic is optional: a model is recognised by its ``pydantic`` ``BaseModel`` base), stored
  as ``"module:qualname"`` plus the map of their fields, rebuilt with ``model_validate`` (a map with a
  ``"__model__"`` key if that fails);
* dataclass instances, stored as ``"module:qualname"`` plus a map of all fields. Decoding imports ``module``
  (if it is not already imported) and rebuilds the class; a field the class gained since (with a default) takes
  its default. If the class cannot be found, is not a dataclass, no longer declares a stored field, gained a
  field without a default, or refuses the stored fields, the value decodes to a plain ``dict`` of the fields plus
  a ``"__dataclass__"`` key holding ``"module:qualname"``.

Only these exact types are accepted: other subclasses (``OrderedDict``, namedtuples...),
sets and every other object are refused with :class:`~aion.errors.PayloadError` whose message names the path
of the bad value, for example ``order.items[3].price: cannot serialise <class 'object'>``. Paths start at a
root name (``value`` unless told), add ``.key`` for a dict key or dataclass field (``['key']`` when the key is
not a Python identifier) and ``[i]`` for a list or tuple index.

Events
======
:func:`encode_event` writes one msgpack map per event: ``"type"`` (the class name), ``"v"`` (the class's
``version``) and every field; field values use the payload encoding, and a nested
:class:`~aion.events.Failure` is an extension holding a map of its fields. :func:`decode_event` accepts older
versions (a field missing from the map takes its dataclass default) and refuses, with
:class:`~aion.errors.CorruptEventError`, anything it cannot decode exactly: bad bytes, an unknown type, a
newer version, an unknown field, a missing required field or a field of the wrong type.

Containers may nest at most :data:`MAX_PAYLOAD_DEPTH` levels deep. Encoding and decoding are thread-safe (a
packer is used by one thread at a time).

The package: ``_wire`` (the extension types, the idle packers, the unpacker), ``_payload`` (what a payload may
hold, and its entry points), ``_events`` (event decoding and the per-type field tables) and ``_stamp`` (the
event encoder's fast paths: a body encoded ahead, then stamped). Import from ``aion._codec`` itself.
"""

from aion._codec._events import decode_event, is_plain_event_type, prepare_event_types
from aion._codec._payload import (
    DEFAULT_PAYLOAD_LIMIT,
    MAX_PAYLOAD_DEPTH,
    check_payload,
    decode_payload,
    encode_payload,
    pack_plain,
)
from aion._codec._stamp import encode_event, encode_event_body, encode_time, stamp_event
from aion._codec._wire import is_model

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "MAX_PAYLOAD_DEPTH",
    "check_payload",
    "decode_event",
    "decode_payload",
    "encode_event",
    "encode_event_body",
    "encode_payload",
    "encode_time",
    "is_model",
    "is_plain_event_type",
    "pack_plain",
    "prepare_event_types",
    "stamp_event",
]

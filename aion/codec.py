"""Payload codecs: a pair of ``bytes -> bytes`` functions applied to every event the store keeps, for
compression or encryption at rest.

``Engine(data_dir, payload_codec=codec)`` encodes each history event's bytes (its payloads with it: inputs,
results, signal and update arguments, failures) as the store writes them, and decodes them as it reads them.
The CLI reading the store without an engine needs the same codec: ``--codec module:object`` (or
``$AION_CODEC``) names it. Compression with the standard library::

    import aion, zlib
    codec = aion.PayloadCodec(encode=zlib.compress, decode=zlib.decompress)   # or aion.codec.zlib_codec()

Encryption with ``cryptography``'s Fernet (``pip install 'aion[crypto]'``)::

    codec = aion.codec.fernet_codec(key)    # key: Fernet.generate_key(), kept outside the data directory

A codec applies to history events only: the run index (workflow id, type, status, times, search attributes)
stays readable, so that ``list`` can filter on it. Never change a data directory's codec: events written with
one codec can only be read with it.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from aion.errors import InvalidArgumentError


@dataclass(frozen=True)
class PayloadCodec:
    """``encode`` turns an event's bytes into what is stored; ``decode`` turns them back (exactly)."""

    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]


def zlib_codec(level: int = 6) -> PayloadCodec:
    """A codec that compresses every stored event with zlib at ``level``."""
    return PayloadCodec(encode=lambda data: zlib.compress(data, level), decode=zlib.decompress)


def fernet_codec(key: bytes | str) -> PayloadCodec:
    """A codec that encrypts every stored event with ``cryptography``'s Fernet (AES-128-CBC and HMAC-SHA256)
    under ``key`` (from ``Fernet.generate_key()``). Needs the ``crypto`` extra: ``pip install 'aion[crypto]'``."""
    try:
        from cryptography.fernet import Fernet  # noqa: PLC0415 - an optional dependency
    except ImportError as error:
        raise InvalidArgumentError("fernet_codec needs cryptography: pip install 'aion[crypto]'") from error
    fernet = Fernet(key)
    return PayloadCodec(encode=fernet.encrypt, decode=fernet.decrypt)


def load_codec(spec: str) -> PayloadCodec:
    """The codec named ``"module:object"`` (a ``PayloadCodec``, or a function of no arguments returning one)."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise InvalidArgumentError(f"a codec is named module:object, got {spec!r}")
    try:
        value: object = importlib.import_module(module_name)
        for part in name.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise InvalidArgumentError(f"cannot load codec {spec!r}: {type(error).__name__}: {error}") from error
    if not isinstance(value, PayloadCodec) and callable(value):
        value = value()
    if not isinstance(value, PayloadCodec):
        raise InvalidArgumentError(f"codec {spec!r} is a {type(value).__name__}, not an aion.PayloadCodec")
    return value

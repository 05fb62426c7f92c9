"""The C library's functions that the standard library does not wrap (``malloc_trim``, ``madvise``, ``prctl``)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def _process_symbols() -> ctypes.CDLL | None:
    """The symbols already loaded into this process, the C library's among them (``dlopen(NULL)``): no search
    for the library file, which ``ctypes.util.find_library`` does by running ``ldconfig`` (~2 ms, a subprocess)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def libc_function(name: str) -> Any | None:
    """The C library's function ``name`` (``errno`` kept for ``ctypes.get_errno``), or None where there is no C
    library or it has no such function (``malloc_trim`` on musl or macOS)."""
    symbols = _process_symbols()
    if symbols is None:
        return None
    try:
        return getattr(symbols, name)
    except AttributeError:
        return None

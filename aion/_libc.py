"""The C library's functions that the standard library does not wrap (``malloc_trim``, ``madvise``, ``prctl``)."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def libc_function(name: str) -> Any | None:
    """The C library's function ``name`` (``errno`` kept for ``ctypes.get_errno``), or None where there is no C
    library or it has no such function (``malloc_trim`` on musl or macOS)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library, use_errno=True), name)
    except (OSError, AttributeError):
        return None

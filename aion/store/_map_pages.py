"""Giving back the pages of the store's map that this process holds resident.

LMDB reads through a read-only shared mapping of ``data.mdb``: every page a read touches stays mapped into the
process, and counts in its RSS, until the map is closed. After a burst of work (100,000 runs started, every one's
history read once) that is ~80 MiB the process will not read again soon. ``MADV_DONTNEED`` on a shared file
mapping only drops the process's page-table entries: the pages stay in the OS page cache, the file is unchanged,
and the next read of a page maps it again (a minor fault, no disk read while the cache holds it).

The caller must hold off any remap of the map meanwhile (``set_mapsize``, closing the environment): the range read
from ``/proc/self/maps`` must still be the store's when ``madvise`` runs. ``LmdbEnvironment.release_mapped_pages``
calls this under its read gate, which a remap takes exclusively.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from aion._libc import libc_function

#: ``madvise`` advice: drop the range's page-table entries (Linux, every architecture).
MADV_DONTNEED: Final = 4
#: Where Linux lists the process's mappings (absent elsewhere: then nothing is released).
PROC_MAPS: Final = Path("/proc/self/maps")

#: ``madvise(addr, length, advice) -> 0 or -1``, as ctypes calls it.
Madvise = Callable[[int, int, int], int]


def _find_madvise() -> Madvise | None:
    """The C library's ``madvise(addr, length, advice)``, or None where there is none."""
    function = libc_function("madvise")
    if function is None:
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    function.restype = ctypes.c_int
    madvise: Madvise = function
    return madvise


_MADVISE: Final = _find_madvise()


def shared_read_only_mappings(path: Path) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` addresses of this process's read-only shared mappings of the file at ``path`` (none
    where ``/proc/self/maps`` does not exist)."""
    try:
        identity = os.stat(path)
        lines = PROC_MAPS.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        # address perms offset dev inode pathname
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[1] != "r--s" or int(fields[4]) != identity.st_ino:
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(fields[5], path):
                start, end = fields[0].split("-")
                yield int(start, 16), int(end, 16)


def release_mapped_pages(path: Path) -> int:
    """Drop this process's resident pages of its read-only shared mappings of ``path``; how many bytes of
    mappings were advised (0 where the platform cannot)."""
    if _MADVISE is None:
        return 0
    released = 0
    for start, end in shared_read_only_mappings(path):
        if _MADVISE(start, end - start, MADV_DONTNEED) == 0:
            released += end - start
    return released

"""glibc malloc settings of the worker process, so freed memory goes back to the system.

RocksDB's flush and compaction threads allocate and free large buffers in their own malloc
arenas; glibc keeps freed chunks resident, so the worker's RSS crept up while the bytes in
use stayed flat (measured with mallinfo2 in a 10-minute soak: arenas 37 → 52 MB, in use
~30 MB). Fewer arenas and a periodic `malloc_trim` keep RSS close to what is in use. Both
are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("genpulse.worker")
M_ARENA_MAX = -8  # mallopt parameters, glibc's malloc.h
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold, kept from rising
TRIM_INTERVAL_S = 30.0


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  # only glibc has it
        libc.malloc_trim  # noqa: B018
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_libc = _glibc()


def limit_arenas(arenas: int = ARENAS) -> None:
    """Cap malloc arenas (like MALLOC_ARENA_MAX, which wins when set); call before RocksDB
    starts its threads."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    if _libc is not None and not _libc.mallopt(M_ARENA_MAX, arenas):
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> None:
    """Serve every block of `threshold` bytes or more by its own mmap, returned when freed
    (like MALLOC_MMAP_THRESHOLD_, which wins when set). glibc otherwise raises the threshold
    to the largest block freed so far (up to 32 MiB), after which the poll's big transient
    buffers (fetched record sets, changelog batches, their lz4 output, JSON of full tables)
    are carved out of the heap and leave it fragmented: free bytes that stay resident."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    if _libc is not None and not _libc.mallopt(M_MMAP_THRESHOLD, threshold):
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) was refused", threshold)


def trim() -> None:
    """Give free malloc pages of every arena back to the system."""
    if _libc is not None:
        _libc.malloc_trim(0)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_figures() -> dict[str, int]:
    """glibc's own account (mallinfo2): bytes in arenas, in use, free, mmapped."""
    if _libc is None or not hasattr(_libc, "mallinfo2"):
        return {}
    _libc.mallinfo2.restype = _Mallinfo2
    info = _libc.mallinfo2()
    return {
        "malloc_arena": info.arena,
        "malloc_in_use": info.uordblks,
        "malloc_free": info.fordblks,
        "malloc_mmapped": info.hblkhd,
    }


def process_figures() -> dict[str, int]:
    """/proc/self/smaps_rollup in bytes: resident, anonymous, file-backed."""
    out: dict[str, int] = {}
    try:
        text = open("/proc/self/smaps_rollup").read()  # noqa: SIM115
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean"):
            out[name.lower()] = int(rest.split()[0]) * 1024
    return out

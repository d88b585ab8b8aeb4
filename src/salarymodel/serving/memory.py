"""Handing a worker's freed memory back to the system after a large batch.

A batch's parsed body, request objects and feature matrix are freed when
its answer is sent, but neither allocator returns the pages on its own:
glibc keeps freed chunks in its arenas (one per thread that allocated, and
batches run in a thread pool) and CPython keeps partly used object arenas.
Measured with ``benchmarks/batch_memory.py``: after 16 concurrent 32 MiB
batches the two workers stayed at 415 and 407 MB, against 134 MB ready.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # glibc only (musl and macOS have no malloc_trim): elsewhere, collection alone.
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def collect() -> None:
    """Collect unreachable cycles (the model is frozen out of this: see service.py)."""
    gc.collect()


def trim() -> bool:
    """Return free heap pages to the system (glibc ``malloc_trim(0)``, every arena).

    ctypes releases the GIL during the call, so it may run in a thread while
    the event loop answers others. False where there is no ``malloc_trim``.
    """
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True

"""Keep freed host memory inside the process during a CPU collect, so batches stop page-faulting.

glibc hands large freed blocks back to the kernel (blocks above its mmap threshold, and the top
of the heap past its trim threshold), so every batch's activations come back as fresh pages. On
the demo model that was 260,000-400,000 page faults per batch (1-1.6 GB), and the forward pass
ran 16 % slower (1.97 s against 1.66 s per 2,048 tokens, `benchmarks/bench_host_memory.py`), and
far less steadily. Fixing the mmap threshold at glibc's maximum (32 MiB) and raising the trim
threshold keeps those pages mapped: the process holds about its peak working set, which a
forward pass reaches anyway. Blocks above 32 MiB (a large model's MLP activations) are still
mapped and unmapped per use. Only glibc is tuned; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import os

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_THRESHOLD = 32 * 2**20
#: free memory at the top of the heap kept before any is returned
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Tune glibc's malloc to keep freed blocks; True when applied (False: not glibc)."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr (Windows)
        return False
    if not libc.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the malloc this process already uses
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

"""One process-wide pool for work that releases the GIL: numba kernels, numpy sorts, file writes.

`map_here_too` runs the last item in the calling thread, so a two-core machine keeps both cores
busy with a single pool thread, and a call with one item never waits for the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

_POOL: ThreadPoolExecutor | None = None
_CREATING = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    global _POOL
    with _CREATING:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(thread_name_prefix="zipfstage-pool")
        return _POOL


def map_here_too(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """[function(item) for item in items], all but the last on the shared pool; re-raises the
    first error once every item has finished."""
    if len(items) <= 1:
        return [function(item) for item in items]
    futures = [shared_pool().submit(function, item) for item in items[:-1]]
    try:
        last = function(items[-1])
    finally:
        done = [future.exception() for future in futures]  # wait for all before raising
    first_error = next((error for error in done if error is not None), None)
    if first_error is not None:
        raise first_error
    return [future.result() for future in futures] + [last]

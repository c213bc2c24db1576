"""One writer per run directory: an OS file lock that dies with its process (SIGKILL included)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zipfstage.errors import ZipfstageError

LOCK_NAME = ".zipfstage.lock"
HOLDER = "collect"  # the only stage that writes the store


@contextmanager
def exclusive_lock(out_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock, or refuse at once if another process holds it."""
    path = Path(out_dir) / LOCK_NAME
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ZipfstageError(
            f"{out_dir} is in use by {holder}; wait for it to finish or use another --out"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{HOLDER} (pid {os.getpid()})")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

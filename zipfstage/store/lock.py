"""Run-directory locks: OS file locks that die with their process (SIGKILL included).

Two locks, two questions:

- `.zipfstage.lock`, exclusive: one `collect` (or `compact`) writes a store at a time.
- `.zipfstage.readers`, shared by `fit`, `plot` and `report` for as long as they run; `collect`
  takes it exclusively only while it creates or replaces the store (and while it compacts), so a
  store generation never changes under a reader. A fit may still run while `collect` fills the
  same generation: it reads the committed batches.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, ParamSpec, TypeVar

from zipfstage.errors import ZipfstageError

LOCK_NAME = ".zipfstage.lock"
READERS_LOCK_NAME = ".zipfstage.readers"
HOLDER = "collect"  # the only stage that writes the store's data

P = ParamSpec("P")
R = TypeVar("R")


def _open(path: Path) -> IO[str]:
    """The lock file, opened for locking; one line on what is wrong with it otherwise."""
    if path.is_dir():
        raise ZipfstageError(f"{path} is a directory, not a lock file: remove it and run again")
    try:
        return path.open("a+")
    except OSError as exc:
        raise ZipfstageError(f"cannot open the lock file {path}: {exc.strerror}") from None


@contextmanager
def exclusive_lock(out_dir: Path, holder: str = HOLDER) -> Iterator[None]:
    """Hold the run directory's lock, or refuse at once if another process holds it."""
    path = Path(out_dir) / LOCK_NAME
    handle = _open(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "another process"
        handle.close()
        raise ZipfstageError(
            f"{out_dir} is in use by {other}; wait for it to finish or use another --out"
        ) from None
    with _released(handle):
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder} (pid {os.getpid()})")
        handle.flush()
        yield


@contextmanager
def replacing_lock(out_dir: Path) -> Iterator[None]:
    """`collect` replaces (or rewrites) the store: refuse while fit, plot or report reads it."""
    handle = _open(Path(out_dir) / READERS_LOCK_NAME)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreInUse(
            f"{out_dir} is being read by zipfstage fit, plot or report; wait for it to finish "
            "before replacing its store"
        ) from None
    with _released(handle):
        yield


class StoreInUse(ZipfstageError):
    """A reader holds the store generation that collect wants to replace."""


@contextmanager
def reading_lock(out_dir: Path) -> Iterator[None]:
    """fit, plot, report: keep the store generation for as long as they run.

    A run folder that cannot hold a lock file (read-only, or not there yet) is read unlocked:
    nothing can replace its store, or the stage fails on the missing store anyway.
    """
    path = Path(out_dir) / READERS_LOCK_NAME
    if not Path(out_dir).is_dir():
        yield
        return
    try:
        handle = _open(path)
    except ZipfstageError:
        if path.is_dir() or os.access(out_dir, os.W_OK):
            raise
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            raise
        raise ZipfstageError(
            f"collect is replacing or compacting the store in {out_dir}; run this again when "
            "it is done"
        ) from None
    with _released(handle):
        yield


def holds_reading_lock(stage: Callable[P, R]) -> Callable[P, R]:
    """Decorate a stage `run(settings, run_dir, ...)`: it runs under the run folder's reading
    lock."""

    @functools.wraps(stage)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        run_dir = kwargs["run_dir"] if "run_dir" in kwargs else args[1]
        with reading_lock(Path(run_dir)):  # type: ignore[arg-type]
            return stage(*args, **kwargs)

    return wrapper


@contextmanager
def _released(handle: IO[str]) -> Iterator[None]:
    """Unlock and close a held lock file when the block ends, however it ends."""
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

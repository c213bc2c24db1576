"""Write batch b on a background thread while batch b + 1 is computed.

Writing a batch touches one chunk in each of hundreds of arrays; zarr-python spends about a
millisecond of CPU per array, which on a GPU machine would otherwise idle the device. At most one
write is in flight, so a kill loses at most the batch being written and the one being computed.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np

from zipfstage.progress import Advance
from zipfstage.store import StoreWriter


class WriteBehind:
    """Queue of depth one in front of a `StoreWriter`; progress advances once a batch commits.

    `in_background=False` writes each batch at once instead. On a CPU run the forward pass keeps
    every core busy, so a writer thread gains nothing and slows it: torch splits each operation
    evenly over its threads, and one thread that shares its core with the writer holds up all.
    """

    def __init__(self, writer: StoreWriter, advance: Advance, in_background: bool = True) -> None:
        self.writer = writer
        self.advance = advance
        self.in_background = in_background
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zipfstage-writer")
        self._pending: tuple[Future[None], int] | None = None

    def submit(
        self,
        batch: int,
        token_ids: np.ndarray,
        positions: np.ndarray,
        values: dict[tuple[str, str], np.ndarray],
    ) -> None:
        """Wait for the previous write to commit, then start this one."""
        self.wait()
        if not self.in_background:
            self.writer.write_batch(batch, token_ids, positions, values)
            self.advance(int(token_ids.size))
            return
        future = self._pool.submit(self.writer.write_batch, batch, token_ids, positions, values)
        self._pending = (future, int(token_ids.size))

    def wait(self) -> None:
        """Block until the write in flight (if any) is committed; re-raise its error."""
        if self._pending is None:
            return
        future, tokens = self._pending
        self._pending = None
        future.result()
        self.advance(tokens)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                # finish a commit already under way so its data and record stay consistent
                self._pending[0].exception()
        finally:
            self._pool.shutdown(wait=True)

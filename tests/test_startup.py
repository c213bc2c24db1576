"""Issue 21: collect's startup does not grow with the number of planned batches.

`progress`, `batch_digest` and `batch_checksum` hold many batches per chunk (written in place),
so creating the store, reading what is committed, committing the first batch and the checks of a
resume open a bounded number of files, whether 1,000 or 1,000,000 batches are planned. (With one
file per batch, a plan of 195,313 batches took 175 s to commit its first one.) Counted with an
audit hook on every file open and directory listing, not timed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from zipfstage.collect.coordinator import pending_batches, uncommit_damaged
from zipfstage.store import StorePlan, StoreWriter, create_store
from zipfstage.store.layout import SCHEMA_VERSION, root_info

_watching: list[tuple[str, list[str]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("open", "os.scandir", "os.listdir") or not _watching or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    for prefix, seen in _watching:
        if isinstance(path, str | Path) and str(path).startswith(prefix):
            seen.append(f"{event} {path}")


sys.addaudithook(_audit)


@contextmanager
def file_accesses(folder: Path) -> Iterator[list[str]]:
    """Every file opened and folder listed under `folder` while the block runs."""
    seen: list[str] = []
    _watching.append((str(folder), seen))
    try:
        yield seen
    finally:
        _watching.pop()


def startup_and_first_commit(path: Path, planned: int) -> list[str]:
    """What collect does up to its first commit, then what a resume checks, on a new store."""
    plan = StorePlan(batch_size=1, seq_len=4, planned_batches=planned)
    attributes = {"schema_version": SCHEMA_VERSION, "config_hash": "x"}
    with file_accesses(path.parent) as seen:
        create_store(path, plan, ["embed", "layer_0"], ["rms", "max_abs"], [0], attributes)
        writer = StoreWriter(path)
        assert pending_batches(writer)[:2] == [0, 1]
        values = {
            (p, m): np.ones(4, np.float32) for p in ("embed", "layer_0") for m in ("rms", "max_abs")
        }
        writer.write_batch(0, np.arange(4), np.arange(4), values)
        resumed = StoreWriter(path)
        uncommit_damaged(path, root_info(resumed.root))
        assert pending_batches(resumed)[:2] == [1, 2]
    return seen


def test_startup_file_accesses_do_not_grow_with_the_planned_batches(tmp_path: Path) -> None:
    small = startup_and_first_commit(tmp_path / "small" / "store.zarr", 1_000)
    large = startup_and_first_commit(tmp_path / "large" / "store.zarr", 1_000_000)
    # a plan 1,000 times larger opens at most one more file per MiB of progress and digests
    # (262,144 and 131,072 batches per chunk: 4 + 8 chunks for 10**6 batches, probed once each
    # by every full read); before, it opened a file per planned batch
    assert len(small) < 400
    assert len(large) - len(small) <= 40, sorted(set(large) - set(small))[:20]

"""Is every committed batch really in the store? Digests of batches, and damaged chunk files.

Zarr reads a missing chunk file as the fill value (NaN), so a deleted file would pass for data.
A committed batch must have the chunk (or, in a compacted store, the shard) of every array that
holds its rows: `missing_chunks` checks that by listing files (cheap, no decoding);
`unreadable_chunks` decodes every committed batch (what `zipfstage check` does). Each finding
names the array and the first batch it damages.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import zarr

from zipfstage.store.layout import (
    BATCH_DIGEST,
    FITS_GROUP,
    PROGRESS,
    TOKEN_IDS,
    StorePlan,
    array_at,
)

Progress = Callable[[int, int], None]


def batch_digest(token_ids: np.ndarray) -> int:
    """A nonzero int64 hash of a batch's token ids (0 means "no digest")."""
    data = np.ascontiguousarray(token_ids, dtype="<i4").tobytes()
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
    return value or 1


@dataclass(frozen=True)
class Damage:
    """One array whose storage for a committed batch is missing or cannot be decoded."""

    array: str
    batch: int
    reason: str  # "missing" or "unreadable"

    def describe(self) -> str:
        return f"{self.array}: the chunk of batch {self.batch} is {self.reason}"


def data_arrays(root: zarr.Group) -> list[str]:
    """Every array whose rows belong to batches: tokens, metrics and the batch digests."""
    names: list[str] = []

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, node in sorted(group.members(), key=lambda item: item[0]):
            if isinstance(node, zarr.Array):
                if f"{prefix}{name}" != PROGRESS:
                    names.append(f"{prefix}{name}")
            elif f"{prefix}{name}" != FITS_GROUP and not name.startswith("outliers"):
                walk(node, f"{prefix}{name}/")

    walk(root, "")
    return names


def committed_batches(root: zarr.Group) -> dict[int, int]:
    """{batch: rows committed} for every committed batch."""
    counts = np.asarray(array_at(root, PROGRESS)[:])
    return {int(b): int(counts[b]) for b in np.flatnonzero(counts)}


def _first_row(name: str, batch: int, plan: StorePlan) -> int:
    """The row (or, for the per-batch digest, the element) where batch `batch` starts."""
    return batch if name == BATCH_DIGEST else plan.batch_rows(batch).start


def _unit_keys(array: zarr.Array, row: int) -> list[str]:
    """Keys of the files (chunks, or shards when sharded) that hold row `row`."""
    unit = array.shards or array.chunks
    if any(size == 0 for size in array.shape):
        return []
    grid = [
        range(math.ceil(size / step)) for size, step in zip(array.shape[1:], unit[1:], strict=True)
    ]
    encode = array.metadata.chunk_key_encoding.encode_chunk_key  # type: ignore[union-attr]
    return [encode((row // unit[0], *rest)) for rest in product(*grid)]


def _stored_keys(folder: Path) -> set[str]:
    """Every file under an array's folder, as chunk keys relative to it."""
    keys: set[str] = set()
    for directory, _, files in os.walk(folder):
        relative = os.path.relpath(directory, folder)
        keys.update(name if relative == "." else f"{relative}/{name}" for name in files)
    return keys


def missing_chunks(
    path: Path, root: zarr.Group, plan: StorePlan, batches: Iterable[int], names: list[str]
) -> Iterator[Damage]:
    """Committed batches whose chunk or shard file is missing, array by array (no decoding).

    Batches of one array come in order, so the first finding per array names its first damage.
    """
    batches = list(batches)
    for name in names:
        array = array_at(root, name)
        stored = _stored_keys(Path(path) / name)
        for batch in batches:
            row = _first_row(name, batch, plan)
            if row >= array.shape[0]:
                continue
            if any(key not in stored for key in _unit_keys(array, row)):
                yield Damage(name, batch, "missing")


def unreadable_chunks(
    root: zarr.Group,
    plan: StorePlan,
    batches: dict[int, int],
    names: list[str],
    progress: Progress | None = None,
) -> Iterator[Damage]:
    """Decode every committed batch of every array; token ids must not hold the fill value."""
    for done, name in enumerate(names, start=1):
        try:
            array = array_at(root, name)
        except Exception:
            yield Damage(name, min(batches, default=0), "unreadable")
            continue
        for batch, rows in batches.items():
            start = _first_row(name, batch, plan)
            stop = start + 1 if name == BATCH_DIGEST else start + rows
            if start >= array.shape[0]:
                continue
            try:
                data = np.asarray(array[start : min(stop, array.shape[0])])
            except Exception:
                yield Damage(name, batch, "unreadable")
                break
            if name == TOKEN_IDS and np.any(data == -1):  # a hole in a shard reads as the fill
                yield Damage(name, batch, "missing")
                break
        if progress:
            progress(done, len(names))


@dataclass(frozen=True)
class CheckResult:
    """What `zipfstage check` found: arrays and batches checked, the first damage per array."""

    arrays: int
    batches: int
    damage: tuple[Damage, ...]


def check_store(
    path: Path, root: zarr.Group, plan: StorePlan, progress: Progress | None = None
) -> CheckResult:
    """File listing, then a decode of every committed batch of every array."""
    batches = committed_batches(root)
    names = data_arrays(root)
    found: dict[str, Damage] = {}
    for damage in missing_chunks(path, root, plan, batches, names):
        found.setdefault(damage.array, damage)
    for damage in unreadable_chunks(root, plan, batches, names, progress):
        if damage.array not in found or damage.batch < found[damage.array].batch:
            found[damage.array] = damage
    return CheckResult(len(names), len(batches), tuple(found[name] for name in sorted(found)))

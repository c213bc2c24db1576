"""Is every committed batch really in the store, as written? Metadata, progress, files, checksums.

Zarr reads a missing chunk file as the fill value and an in-place chunk has no checksum of its
own, so neither a deleted file nor a changed byte would be noticed by reading. Four checks, from
cheap to thorough, each finding naming the array and the first batch it damages:

- `metadata_damage`: every array's zarr.json opens (the list of arrays is the checksum table's
  columns, so a deleted array folder is found too);
- `progress_damage`: every `progress` entry is possible (0..rows per batch; in a finished store
  every batch committed and whole), and each committed batch's seal matches its row count and
  digest (`zipfstage.store.checksums`);
- `missing_chunks`: the chunk (or shard) file of every committed batch exists (a file listing);
- `decode_damage`: every committed batch decodes, matches its checksums, and its token ids match
  `batch_digest` (what `zipfstage check` and a rerun of collect on a finished store do).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from zipfstage.store.checksums import COLUMNS_ATTR, ChecksumTable
from zipfstage.store.layout import (
    BATCH_DIGEST,
    CHECKSUMS,
    FITS_GROUP,
    PROGRESS,
    STATUS_COMPLETE,
    TOKEN_IDS,
    StorePlan,
    array_at,
)

Progress = Callable[[int, int], None]
#: arrays with one element (or row) per batch, not per token
PER_BATCH = (PROGRESS, BATCH_DIGEST, CHECKSUMS)

MISSING, UNREADABLE, CHANGED, METADATA, PROGRESS_ENTRY = (
    "missing",
    "unreadable",
    "changed",
    "metadata",
    "progress",
)


def batch_digest(token_ids: np.ndarray) -> int:
    """A nonzero int64 hash of a batch's token ids (0 means "no digest")."""
    data = np.ascontiguousarray(token_ids, dtype="<i4").tobytes()
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
    return value or 1


@dataclass(frozen=True)
class Damage:
    """One array whose storage for a committed batch is missing, unreadable or changed."""

    array: str
    batch: int
    reason: str
    detail: str = ""

    def describe(self) -> str:
        if self.reason == METADATA:
            return f"{self.array}/zarr.json is missing or damaged"
        if self.reason == CHANGED:
            return f"{self.array}: batch {self.batch} does not match its checksum"
        if self.reason == PROGRESS_ENTRY:
            return f"{self.array}: {self.detail}"
        return f"{self.array}: the chunk of batch {self.batch} is {self.reason}"

    @property
    def batch_level(self) -> bool:
        """Whether collecting the batch again repairs it (once an unreadable chunk file is
        removed, `unreadable_files`): not so for an array's metadata."""
        return self.reason != METADATA


def repair_advice(damage: Iterable[Damage], compacted: bool, run_dir: Path) -> str:
    """The one command that repairs `damage`, as the end of a one-line message."""
    if compacted or not all(d.batch_level for d in damage):
        why = "a compacted store" if compacted else "an array's metadata"
        return (
            f"zipfstage cannot repair {why} in place: collect again with "
            f"`zipfstage collect --overwrite --out {run_dir}`"
        )
    return (
        "run `zipfstage collect` with the same settings: it checks the store and collects "
        "the damaged batches again"
    )


def data_arrays(path: Path, root: zarr.Group) -> list[str]:
    """Every array whose rows belong to batches: tokens, metrics, digests and checksums.

    A store with checksums lists its covered arrays in the table's attribute (so a deleted
    array folder is missed too); an older one is walked on disk, where a folder whose zarr.json
    is unreadable counts as an array (`metadata_damage` then names it).
    """
    try:
        columns = array_at(root, CHECKSUMS).attrs.get(COLUMNS_ATTR)
    except Exception:
        columns = None
    if isinstance(columns, list):
        present = [name for name in (BATCH_DIGEST, CHECKSUMS) if (Path(path) / name).exists()]
        return sorted([str(c) for c in columns] + present)
    names: list[str] = []
    for directory, subdirs, files in os.walk(path):
        relative = Path(directory).relative_to(path).as_posix()
        subdirs.sort()
        if relative == ".":
            continue
        if relative == FITS_GROUP or Path(directory).name.startswith("outliers"):
            subdirs.clear()
        elif "zarr.json" in files and _node_type(Path(directory)) != "group":
            subdirs.clear()
            if relative != PROGRESS:
                names.append(relative)
    return sorted(names)


def _node_type(folder: Path) -> str | None:
    """ "array" or "group" from a zarr.json, None when it cannot be read."""
    try:
        return str(json.loads((folder / "zarr.json").read_bytes()).get("node_type"))
    except (OSError, ValueError, AttributeError):
        return None


def committed_batches(root: zarr.Group) -> dict[int, int]:
    """{batch: rows committed} for every committed batch."""
    counts = np.asarray(array_at(root, PROGRESS)[:])
    return {int(b): int(counts[b]) for b in np.flatnonzero(counts)}


def metadata_damage(root: zarr.Group, names: Iterable[str]) -> list[Damage]:
    """Arrays whose zarr.json is missing or cannot be parsed."""
    found = []
    for name in names:
        try:
            array_at(root, name)
        except Exception:
            found.append(Damage(name, 0, METADATA))
    return found


def progress_damage(
    root: zarr.Group,
    plan: StorePlan,
    info: dict[str, Any],
    counts: np.ndarray,
    table: ChecksumTable | None,
) -> list[Damage]:
    """Impossible `progress` entries (`counts`), and committed batches whose seal does not match.

    In a store collect has not finished, 0 means "not committed yet" (collect will do it); in a
    finished store every batch must be committed, and all but the last whole. Read `counts`
    before `table`: a batch writes its checksums before its commit, so every batch committed in
    `counts` is then in `table` even while collect runs.
    """
    counts = counts.astype(np.int64)
    rows = plan.rows_per_batch
    found = [
        Damage(PROGRESS, int(b), PROGRESS_ENTRY, f"batch {b} claims {counts[b]} rows of {rows}")
        for b in np.flatnonzero((counts < 0) | (counts > rows))
    ]
    if info.get("status") == STATUS_COMPLETE and info.get("n_batches") is not None:
        n_batches = int(info["n_batches"])
        if counts.size != n_batches:
            return [Damage(PROGRESS, 0, METADATA)]
        short = np.flatnonzero(counts[:-1] != rows).tolist()
        short += [n_batches - 1] if n_batches and counts[-1] <= 0 else []
        found += [
            Damage(
                PROGRESS,
                b,
                PROGRESS_ENTRY,
                f"batch {b} of a finished store claims {counts[b]} rows",
            )
            for b in sorted(set(short))
            if 0 <= counts[b] <= rows
        ]
    if table is not None:
        digests = stored_digests(root, committed_extent(counts))
        for b in np.flatnonzero((counts > 0) & (counts <= rows)):
            if not table.sealed(int(b), int(counts[b]), int(digests[b])):
                detail = f"batch {b}: its progress entry, digest or checksum row was changed"
                found.append(Damage(PROGRESS, int(b), PROGRESS_ENTRY, detail))
    return found


def committed_extent(counts: np.ndarray) -> int:
    """One past the last committed batch: how much of a per-batch array a check reads (a plan
    of 10**6 batches has 10**6 rows of checksums, nearly all never written)."""
    committed = np.flatnonzero(counts)
    return int(committed[-1]) + 1 if committed.size else 0


def stored_digests(root: zarr.Group, size: int) -> np.ndarray:
    """The batch digests, zeros where a store has none."""
    if BATCH_DIGEST not in root:
        return np.zeros(size, dtype=np.int64)
    stored = np.asarray(array_at(root, BATCH_DIGEST)[:size]).astype(np.int64)
    return np.pad(stored, (0, size - stored.size))


def _first_row(name: str, batch: int, plan: StorePlan) -> int:
    """The row (or, for a per-batch array, the element) where batch `batch` starts."""
    return batch if name in PER_BATCH else plan.batch_rows(batch).start


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
                yield Damage(name, batch, MISSING)


def verify_rows(
    name: str,
    start: int,
    data: np.ndarray,
    batches: dict[int, int],
    plan: StorePlan,
    table: ChecksumTable | None,
) -> Iterator[Damage]:
    """Batches among `batches` whose rows inside `data` (rows start.. of array `name`) are
    not as written: a token id hole (-1) or a checksum that does not match."""
    rows_per_batch = plan.rows_per_batch
    first = start // rows_per_batch
    last = (start + data.shape[0] - 1) // rows_per_batch if data.shape[0] else first - 1
    check = table is not None and table.covers(name)
    for batch in range(first, last + 1):
        count = batches.get(batch, 0)
        begin = batch * rows_per_batch - start
        if count == 0 or begin < 0 or begin + count > data.shape[0]:
            continue
        rows = data[begin : begin + count]
        if name == TOKEN_IDS and np.any(rows == -1):  # a hole in a shard reads as the fill
            yield Damage(name, batch, MISSING)
        elif check and table is not None and not table.matches(name, batch, rows):
            yield Damage(name, batch, CHANGED)


def decode_damage(
    root: zarr.Group,
    plan: StorePlan,
    batches: dict[int, int],
    names: list[str],
    table: ChecksumTable | None,
    progress: Progress | None = None,
) -> Iterator[Damage]:
    """Decode every committed batch of every array, a chunk's rows at a time, and verify them:
    checksums, token id holes, and token ids against `batch_digest`."""
    digests = stored_digests(root, max(batches, default=-1) + 1) if TOKEN_IDS in names else None
    for done, name in enumerate(names, start=1):
        array = array_at(root, name)
        if name in PER_BATCH:
            yield from _decode_per_batch(array, name)
        else:
            yield from _decode_rows(array, name, plan, batches, table, digests)
        if progress:
            progress(done, len(names))


def _decode_per_batch(array: zarr.Array, name: str) -> Iterator[Damage]:
    """Every chunk of a per-batch array decodes (its values are checked by the seals); an
    unreadable one is named by its first batch."""
    step = array.chunks[0]
    for start in range(0, array.shape[0], step):
        try:
            np.asarray(array[start : start + step])
        except Exception:
            yield Damage(name, start, UNREADABLE)


def _decode_rows(
    array: zarr.Array,
    name: str,
    plan: StorePlan,
    batches: dict[int, int],
    table: ChecksumTable | None,
    digests: np.ndarray | None,
) -> Iterator[Damage]:
    step = max(array.chunks[0] // plan.rows_per_batch, 1) * plan.rows_per_batch
    blocks = sorted({plan.batch_rows(b).start // step for b in batches})
    for block in blocks:
        start = block * step
        if start >= array.shape[0]:
            continue
        try:
            data = np.asarray(array[start : min(start + step, array.shape[0])])
        except Exception:
            held = (b for b in sorted(batches) if plan.batch_rows(b).start // step == block)
            yield from (Damage(name, b, UNREADABLE) for b in held)
            continue
        yield from verify_rows(name, start, data, batches, plan, table)
        if name == TOKEN_IDS and digests is not None:
            yield from digest_damage(start, data, batches, plan, digests)


def digest_damage(
    start: int, ids: np.ndarray, batches: dict[int, int], plan: StorePlan, digests: np.ndarray
) -> Iterator[Damage]:
    """Batches whose stored token ids no longer hash to their `batch_digest`."""
    rows_per_batch = plan.rows_per_batch
    for batch in range(start // rows_per_batch, (start + ids.shape[0]) // rows_per_batch + 1):
        count, begin = batches.get(batch, 0), batch * rows_per_batch - start
        inside = count and digests[batch] and begin + count <= ids.shape[0]
        if inside and batch_digest(ids[begin : begin + count]) != digests[batch]:
            yield Damage(BATCH_DIGEST, batch, CHANGED)


def unreadable_files(
    path: Path, root: zarr.Group, plan: StorePlan, found: Iterable[Damage]
) -> set[Path]:
    """The chunk files behind unreadable batches (a truncated chunk, say): removed, their
    batches read as missing, which collect writes again into a whole new chunk."""
    files: set[Path] = set()
    for damage in found:
        if damage.reason == UNREADABLE:
            array = array_at(root, damage.array)
            row = _first_row(damage.array, damage.batch, plan)
            files.update(Path(path) / damage.array / key for key in _unit_keys(array, row))
    return files


@dataclass(frozen=True)
class CheckResult:
    """What a check found: arrays and batches checked, and every damage (in finding order)."""

    arrays: int
    batches: int
    found: tuple[Damage, ...] = field(default=())

    @property
    def damage(self) -> tuple[Damage, ...]:
        """The first damage per array, by array name: what `check` prints."""
        first: dict[str, Damage] = {}
        for damage in self.found:
            if damage.array not in first or damage.batch < first[damage.array].batch:
                first[damage.array] = damage
        return tuple(first[name] for name in sorted(first))

    @property
    def damaged_batches(self) -> list[int]:
        return sorted({d.batch for d in self.found if d.batch_level})

    @property
    def repairable(self) -> bool:
        """Whether collecting the damaged batches again repairs everything found."""
        return all(d.batch_level for d in self.found)


def check_store(
    path: Path,
    root: zarr.Group,
    plan: StorePlan,
    info: dict[str, Any],
    progress: Progress | None = None,
    decode: bool = True,
) -> CheckResult:
    """Metadata, progress and seals, file listing, then (if `decode`) every committed batch."""
    names = data_arrays(path, root)
    found = metadata_damage(root, [PROGRESS, *names])
    if found:  # the arrays themselves cannot be trusted: nothing else is checked
        return CheckResult(len(names), 0, tuple(found))
    try:
        counts = np.asarray(array_at(root, PROGRESS)[:])
        table = ChecksumTable.read(root, committed_extent(counts))
        found = progress_damage(root, plan, info, counts, table)
    except Exception:  # a per-batch array's chunk does not decode: nothing else can be trusted
        per_batch = [name for name in PER_BATCH if name in root]
        found = [d for name in per_batch for d in _decode_per_batch(array_at(root, name), name)]
        return CheckResult(len(names), 0, tuple(found))
    rows = plan.rows_per_batch
    batches = {int(b): int(counts[b]) for b in np.flatnonzero((counts > 0) & (counts <= rows))}
    found += missing_chunks(path, root, plan, batches, names)
    if decode:
        found += decode_damage(root, plan, batches, names, table, progress)
    return CheckResult(len(names), len(batches), tuple(found))

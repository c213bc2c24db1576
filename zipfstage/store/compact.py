"""Rewrite a finished store with a few shard files per array instead of one per ~1 MB of batches.

While `collect` runs, uncompressed chunks of whole batches let any worker write any batch in
place alone; once the store is complete nobody writes it again, and thousands of chunk files
(hundreds of thousands in stores collected one chunk per batch) only make it slow to copy. Each
array is rewritten with Zarr v3 sharding (inner chunks of whole batches, about 1 MiB, so reading
a slice stays cheap), then swapped in. Every array is always whole, old or new, with the
same values: the new one is written beside the store and verified, then the old moves to a trash
folder, the new takes its name, and the trash is deleted. A rerun after a kill finishes or undoes
a swap.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from zipfstage.errors import ZipfstageError
from zipfstage.store.layout import (
    BATCH_DIGEST,
    CHECKSUMS,
    METRICS_GROUP,
    PROGRESS,
    ROOT_ATTR,
    STATUS_COMPLETE,
    StorePlan,
    root_info,
)
from zipfstage.store.writer import COMPRESSORS

#: uncompressed bytes per shard at most; an array larger than this gets several shards
SHARD_BYTES = 256 * 2**20
#: uncompressed bytes per inner chunk (whole batches): a slice read decodes at most this much
INNER_BYTES = 2**20
LAYOUT_ATTR = "layout"
LAYOUT_SHARDED = "sharded"
_NEW, _TRASH = "new", "trash"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CompactResult:
    """What compaction did: arrays rewritten, files in the store before and after, seconds."""

    arrays: int
    files_before: int
    files_after: int
    seconds: float
    already_compacted: bool = False


def require_complete_store(store_path: Path) -> dict[str, object]:
    """The store's description, or a one-line error if it is missing or still being collected."""
    path = Path(store_path)
    if not (path / "zarr.json").is_file():
        raise ZipfstageError(f"no store at {path}: run `zipfstage collect` first")
    try:
        info = root_info(zarr.open_group(path, mode="r", zarr_format=3))
    except Exception:
        raise ZipfstageError(f"{path} is not a zipfstage store") from None
    if info.get("status") != STATUS_COMPLETE:
        raise ZipfstageError(
            f"the store at {path} is not complete (status {info.get('status')!r}): let "
            "`zipfstage collect` finish before compacting it"
        )
    return info


def is_compacted(store_path: Path) -> bool:
    info = require_complete_store(store_path)
    return info.get(LAYOUT_ATTR) == LAYOUT_SHARDED


def compact_store(
    store_path: Path,
    progress: Progress | None = None,
    shard_bytes: int = SHARD_BYTES,
    inner_bytes: int = INNER_BYTES,
) -> CompactResult:
    """Shard every array under tokens/ and metrics/, and `progress`; a no-op once done.

    The caller holds the run directory's lock (collect already does at its finish).
    """
    started = time.perf_counter()
    path = Path(store_path)
    info = require_complete_store(path)
    work = work_dir(path)
    recover(path, work)
    before = count_files(path)
    if info.get(LAYOUT_ATTR) == LAYOUT_SHARDED:
        shutil.rmtree(work, ignore_errors=True)
        return CompactResult(0, before, before, time.perf_counter() - started, True)
    plan = info["plan"]
    assert isinstance(plan, dict)  # require_complete_store read a zipfstage store
    batch_rows = StorePlan(**plan).rows_per_batch
    names = compactable_arrays(path)
    if progress:
        progress(0, len(names))
    for done, name in enumerate(names, start=1):
        source = zarr.open_array(path / name, mode="r", zarr_format=3)
        if source.shards is None:
            _compact_array(path, work, name, batch_rows, (inner_bytes, shard_bytes))
        if progress:
            progress(done, len(names))
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    root.attrs[ROOT_ATTR] = {**root_info(root), LAYOUT_ATTR: LAYOUT_SHARDED}
    shutil.rmtree(work, ignore_errors=True)
    return CompactResult(len(names), before, count_files(path), time.perf_counter() - started)


def work_dir(store_path: Path) -> Path:
    """Beside the store (same filesystem, so renames are atomic), outside its hierarchy."""
    return store_path.with_name(f".{store_path.name}.compacting")


def compactable_arrays(store_path: Path) -> list[str]:
    """Array paths under tokens/ and metrics/, and the progress array; fits/ stays as it is."""
    root = zarr.open_group(store_path, mode="r", zarr_format=3)
    per_batch = (PROGRESS, BATCH_DIGEST, CHECKSUMS)
    names = [n for n in per_batch if isinstance(root.get(n), zarr.Array)]
    for group_name in ("tokens", METRICS_GROUP):
        group = root.get(group_name)
        if isinstance(group, zarr.Group):
            names.extend(f"{group_name}/{name}" for name, _ in _arrays_under(group))
    return names


def _arrays_under(group: zarr.Group, prefix: str = "") -> Iterator[tuple[str, zarr.Array]]:
    for name, node in sorted(group.members(), key=lambda item: item[0]):
        if isinstance(node, zarr.Array):
            yield f"{prefix}{name}", node
        else:
            yield from _arrays_under(node, f"{prefix}{name}/")


def compact_chunks(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, inner_bytes: int, cap: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(inner chunk, shard) shapes: whole batch chunks along rows, about `inner_bytes` per inner
    chunk (per-chunk overhead dominates reads of tiny chunks), as few even shards as `cap` allows.
    """
    chunk_bytes = max(math.prod(chunks) * itemsize, 1)
    n_chunks = max(1, math.ceil(shape[0] / chunks[0]))
    per_inner = max(1, min(n_chunks, inner_bytes // chunk_bytes))
    n_inner = math.ceil(n_chunks / per_inner)
    inner_per_shard = max(1, cap // (per_inner * chunk_bytes))
    n_shards = math.ceil(n_inner / inner_per_shard)
    inner_rows = per_inner * chunks[0]
    shard_rows = math.ceil(n_inner / n_shards) * inner_rows
    return (inner_rows, *chunks[1:]), (shard_rows, *chunks[1:])


def _compact_array(
    store_path: Path, work: Path, name: str, batch_rows: int, sizes: tuple[int, int]
) -> None:
    """Write a sharded copy beside the store, checking each shard as written, then swap it in.

    Inner chunks are whole batches (collect's chunks may hold many), about `sizes[0]` bytes.
    """
    source = zarr.open_array(store_path / name, mode="r", zarr_format=3)
    new = work / _NEW / quote(name, safe="")
    shutil.rmtree(new, ignore_errors=True)
    unit = (min(source.chunks[0], batch_rows), *source.chunks[1:])
    inner, shards = compact_chunks(source.shape, unit, source.dtype.itemsize, *sizes)
    target = zarr.create_array(
        store=str(new),
        shape=source.shape,
        dtype=source.dtype,
        chunks=inner,
        shards=shards,
        filters=source.filters,
        # collect writes uncompressed; every inner chunk gets a CRC32C (the shard index has
        # one by default), so a changed byte fails the read instead of being read
        compressors=[*(source.compressors or COMPRESSORS), Crc32cCodec()],
        serializer=source.serializer or "auto",
        fill_value=source.fill_value,
        attributes=dict(source.attrs),
        dimension_names=source.metadata.dimension_names,  # type: ignore[union-attr]
    )
    copy = zarr.open_array(new, mode="r", zarr_format=3)  # what a reader will see
    _verify_metadata(source, copy)
    for rows in _row_blocks(source.shape[0], shards[0]):
        data = np.asarray(source[rows])
        target[rows] = data
        _verify(data, copy, rows)
    _swap(store_path / name, work / _TRASH / quote(name, safe=""), new)


def _row_blocks(n_rows: int, step: int) -> Iterator[slice]:
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _verify_metadata(source: zarr.Array, copy: zarr.Array) -> None:
    """Same shape, dtype, fill value and attributes as the source."""
    same = (
        copy.shape == source.shape
        and copy.dtype == source.dtype
        and dict(copy.attrs) == dict(source.attrs)
        and np.array_equal(np.asarray(copy.fill_value), np.asarray(source.fill_value), True)
    )
    if not same:
        raise RuntimeError(f"the compacted copy of {source} differs in metadata")


def _verify(expected: np.ndarray, copy: zarr.Array, rows: slice) -> None:
    """The rows as read back from disk equal the source's (NaN equal to NaN)."""
    if not np.array_equal(np.asarray(copy[rows]), expected, equal_nan=True):
        raise RuntimeError(f"the compacted copy of {copy} differs in rows {rows}")


def _swap(final: Path, trash: Path, new: Path) -> None:
    """Old to trash, new to the final name, trash away: each step a rename or a removal."""
    trash.parent.mkdir(parents=True, exist_ok=True)
    _rename(final, trash)
    _rename(new, final)
    _remove(trash)


def _rename(source: Path, target: Path) -> None:
    os.rename(source, target)


def _remove(path: Path) -> None:
    shutil.rmtree(path)


def recover(store_path: Path, work: Path) -> None:
    """Finish the swaps a kill interrupted; drop unverified copies.

    An array in the trash was verified before it moved there, so: final name present -> the
    trash is left over; final name missing -> the new copy takes it (or, if it is gone, the
    trash goes back).
    """
    trash_dir = work / _TRASH
    if trash_dir.is_dir():
        for trash in sorted(trash_dir.iterdir()):
            final = store_path / unquote(trash.name)
            new = work / _NEW / trash.name
            if not final.exists():
                _rename(new if new.exists() else trash, final)
            if trash.exists():
                _remove(trash)
    shutil.rmtree(work / _NEW, ignore_errors=True)


def count_files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))

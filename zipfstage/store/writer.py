"""Create the store atomically and write batches so that a kill loses at most the batch in flight.

A batch's data goes in first, then its row count into `progress`: a batch is done once that count is
on disk. Only the coordinating process changes metadata (creation, the final resize), so worker
processes never hold a stale metadata handle that could undo a resize.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.core.sync import sync

from zipfstage.errors import ZipfstageError
from zipfstage.records import ATTN_METRICS, CHANNEL_WISE, TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN
from zipfstage.store.checksums import COLUMNS_ATTR, checksum_columns, checksum_row, crc
from zipfstage.store.chunk_write import ChunkFile
from zipfstage.store.integrity import batch_digest
from zipfstage.store.layout import (
    BATCH_DIGEST,
    CHECKSUMS,
    FITS_GROUP,
    PROGRESS,
    ROOT_ATTR,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    TOKEN_IDS,
    TOKEN_POSITIONS,
    UNCOMMITTED_ATTR,
    UNCOMMITTED_NOTE,
    StorePlan,
    array_at,
    metric_array_name,
    remove_path,
    root_info,
)
from zipfstage.store.values import (
    InexactValues,
    encode,
    encoding_of,
    value_attributes,
    value_fill,
)

#: the codec of a compacted store: lz4 with bit-shuffle. float32 metrics hardly compress (zstd
#: level 5 saves 6 % over a whole store) but zstd costs 5 ms per 512 KB chunk against 0.2 ms.
#: Integer top-k arrays shrink 3-8x.
COMPRESSORS = [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")]
#: collect's arrays name chunks c.<i> (c.<i>.0 for [N, k]) beside zarr.json: with "/" a chunk
#: needs a folder c/ (c/<i>/ for [N, k]) of its own, and creating one cost as much as writing
#: the chunk (a 31-point collect made 500 folders in its first batch)
FLAT_CHUNK_KEYS: dict[str, Any] = {"name": "default", "configuration": {"separator": "."}}
#: while collect runs, a chunk holds whole batches, about this many bytes, uncompressed: each
#: batch writes its rows in place (`ChunkFile`), so a batch creates a file only every ~1 MB
#: per array instead of one per array (622 per batch at 31 points, 50-140 µs each here, more on
#: network file systems). Compaction then compresses.
COLLECT_CHUNK_BYTES = 1 << 20
#: arrays whose chunks are created holding their fill value (-1), not sparse: a lost chunk that
#: a later batch makes again then reads -1 for the batches it lost, which `check` finds
FILLED_ON_CREATE = frozenset({TOKEN_IDS, TOKEN_POSITIONS})
#: the top-k arrays' dtype and fill value (TOPK_CONTRACT.md): rows with no chunk read NaN / -1 / 0
TOPK_DTYPES: dict[str, tuple[str, float]] = {
    TOPK_ABS: ("float32", float("nan")),
    TOPK_CHANNEL: ("int32", -1),
    TOPK_SIGN: ("int8", 0),
}


@dataclass(frozen=True)
class TopkLayout:
    """One point's top-k arrays: k columns (the request clamped to the vector width there)."""

    k: int
    k_requested: int
    width: int


def create_store(
    path: Path,
    plan: StorePlan,
    points: list[str],
    metrics: list[str],
    channel_indices: list[int],
    attributes: Mapping[str, Any],
    topk: Mapping[str, TopkLayout] | None = None,
    point_channels: Mapping[str, list[int]] | None = None,
    value_dtype: str = "float32",
    attention: Mapping[str, int] | None = None,
) -> None:
    """Lay out every array in a temporary folder, then move it into place in one rename.

    `topk` maps points to their top-k layout; those points get topk_abs/_channel/_sign [N, k].
    `point_channels` gives a point's own channel_wise indices (a d_ff site samples from d_ff).
    `value_dtype` is channel_wise's and topk_abs's stored dtype (`store.values.half_dtype`).
    `attention` maps attn points to their heads: each gets the ATTN_METRICS as [N, heads], and
    is listed in the root attribute "attention", not in "points" (it has no hidden metrics).
    The store gets a fresh `store_id` (its generation). A symbolic link at `path` is replaced,
    never what it points to. A failed write (full disk, no permission) leaves `path` as it was.
    """
    path = Path(path)
    for leftover in path.parent.glob(f".{path.name}.creating-*"):  # from a killed creation
        shutil.rmtree(leftover, ignore_errors=True)
    staging = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        listed = [*metrics, *TOPK_DTYPES] if topk else metrics  # top-k last; readers skip them
        _lay_out(staging, plan, points, listed, channel_indices, attributes)
        root = zarr.open_group(staging, mode="r+", zarr_format=3)
        for point in points:
            channels = (point_channels or {}).get(point, channel_indices)
            _create_metrics(root, plan, point, metrics, channels, value_dtype)
        for point, layout in (topk or {}).items():
            _create_topk(root, point, layout, plan, value_dtype)
        if attention:
            _create_attention(root, plan, dict(attention))
        covered = [TOKEN_IDS, TOKEN_POSITIONS]
        covered += [metric_array_name(p, m) for p in points for m in metrics]
        covered += [metric_array_name(p, name) for p in topk or {} for name in TOPK_DTYPES]
        covered += [metric_array_name(p, m) for p in attention or {} for m in ATTN_METRICS]
        _create_checksums(root, plan, covered)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(f"cannot create the store {path}", exc) from None
    remove_path(path)
    staging.rename(path)


def collect_chunk_rows(plan: StorePlan, row_bytes: int) -> int:
    """Rows per chunk while collecting: whole batches, about COLLECT_CHUNK_BYTES, at most the
    planned rows (a batch never straddles two chunks)."""
    batches = COLLECT_CHUNK_BYTES // max(plan.rows_per_batch * row_bytes, 1)
    return max(1, min(batches, plan.planned_batches)) * plan.rows_per_batch


def batch_chunk(plan: StorePlan, row_bytes: int) -> int:
    """Batches per chunk of a per-batch array: about COLLECT_CHUNK_BYTES, at most all of them."""
    return max(1, min(COLLECT_CHUNK_BYTES // max(row_bytes, 1), plan.planned_batches))


def _create_checksums(root: zarr.Group, plan: StorePlan, covered: list[str]) -> None:
    """`batch_checksum`: a row per batch, a column per covered array and the seal (checksums)."""
    width = len(covered) + 1
    root.create_array(
        CHECKSUMS,
        shape=(plan.planned_batches, width),
        chunks=(batch_chunk(plan, 4 * width), width),
        dtype="uint32",
        fill_value=0,
        compressors=None,
        chunk_key_encoding=FLAT_CHUNK_KEYS,
        attributes={COLUMNS_ATTR: covered},
        dimension_names=("batch", "column"),
    )


def write_error(what: str, exc: OSError) -> ZipfstageError:
    """One line for a failed write: what failed and the OS's reason (full disk, permission)."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return ZipfstageError(f"{what}: {reason}{where}")


def _lay_out(
    staging: Path,
    plan: StorePlan,
    points: list[str],
    metrics: list[str],
    channel_indices: list[int],
    attributes: Mapping[str, Any],
) -> None:
    root = zarr.open_group(staging, mode="w", zarr_format=3)
    for name in (TOKEN_IDS, TOKEN_POSITIONS):
        root.create_array(
            name,
            shape=(plan.planned_rows,),
            chunks=(collect_chunk_rows(plan, 4),),
            dtype="int32",
            fill_value=-1,
            compressors=None,
            chunk_key_encoding=FLAT_CHUNK_KEYS,
            dimension_names=("token",),
        )
    for name, dtype in ((PROGRESS, "int32"), (BATCH_DIGEST, "int64")):
        # uncompressed chunks of many batches: a commit is one small pwrite in place into a
        # file that reads 0 ("not committed") until then (`ChunkFile`), and a resume reads a
        # few files, not one per planned batch (195,313 took 175 s to open, issue 21)
        root.create_array(
            name,
            shape=(plan.planned_batches,),
            chunks=(batch_chunk(plan, np.dtype(dtype).itemsize),),
            dtype=dtype,
            fill_value=0,
            compressors=None,
            chunk_key_encoding=FLAT_CHUNK_KEYS,
            dimension_names=("batch",),
        )
    root.attrs[UNCOMMITTED_ATTR] = UNCOMMITTED_NOTE
    root.attrs[ROOT_ATTR] = {
        **attributes,
        "store_id": uuid.uuid4().hex,
        "plan": plan.to_json(),
        "points": points,
        "metrics": metrics,
        "channel_indices": channel_indices,
        "status": STATUS_RUNNING,
    }


def _create_metrics(
    root: zarr.Group,
    plan: StorePlan,
    point: str,
    metrics: list[str],
    channels: list[int],
    value_dtype: str = "float32",
) -> None:
    """A point's float32 metric arrays: [N], or [N, channels] for channel_wise (`value_dtype`)."""
    rows, width = plan.planned_rows, max(len(channels), 1)
    for metric in metrics:
        wide = metric == CHANNEL_WISE
        dtype = value_dtype if wide else "float32"
        itemsize = np.dtype(dtype).itemsize
        root.create_array(
            metric_array_name(point, metric),
            shape=(rows, len(channels)) if wide else (rows,),
            chunks=(collect_chunk_rows(plan, itemsize * width), width)
            if wide
            else (collect_chunk_rows(plan, itemsize),),
            dtype=dtype,
            fill_value=value_fill(dtype),
            compressors=None,
            chunk_key_encoding=FLAT_CHUNK_KEYS,
            attributes={"channels": channels, **value_attributes(dtype)} if wide else None,
            dimension_names=("token", "channel") if wide else ("token",),
        )


def _create_topk(
    root: zarr.Group, point: str, layout: TopkLayout, plan: StorePlan, value_dtype: str = "float32"
) -> None:
    width = max(layout.k, 1)
    for name, (dtype, fill) in TOPK_DTYPES.items():
        extra: dict[str, Any] = {}
        if name == TOPK_ABS:
            dtype, fill, extra = value_dtype, value_fill(value_dtype), value_attributes(value_dtype)
        root.create_array(
            metric_array_name(point, name),
            shape=(plan.planned_rows, layout.k),
            chunks=(collect_chunk_rows(plan, np.dtype(dtype).itemsize * width), width),
            dtype=dtype,
            fill_value=fill,
            compressors=None,
            chunk_key_encoding=FLAT_CHUNK_KEYS,
            attributes={
                "width": layout.width,
                "k": layout.k,
                "k_requested": layout.k_requested,
                **extra,
            },
            dimension_names=("token", "rank"),
        )


def _create_attention(root: zarr.Group, plan: StorePlan, attention: dict[str, int]) -> None:
    """Each attn point's [N, heads] float32 arrays, NaN until written, and their listing."""
    for point, heads in attention.items():
        for metric in ATTN_METRICS:
            root.create_array(
                metric_array_name(point, metric),
                shape=(plan.planned_rows, heads),
                chunks=(collect_chunk_rows(plan, 4 * heads), heads),
                dtype="float32",
                fill_value=float("nan"),
                compressors=None,
                chunk_key_encoding=FLAT_CHUNK_KEYS,
                dimension_names=("token", "head"),
            )
    info = root_info(root)
    info["attention"] = {"points": attention, "metrics": list(ATTN_METRICS)}
    root.attrs[ROOT_ATTR] = info


class StoreWriter:
    """Writes whole batches into an existing store; safe to use from several processes at once."""

    #: write each batch's checksum row (`zipfstage.store.checksums`); off only to measure its cost
    checksums: bool = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.root = zarr.open_group(self.path, mode="r+", zarr_format=3)
        self.plan = StorePlan(**root_info(self.root)["plan"])
        self._progress = array_at(self.root, PROGRESS)
        self._arrays: dict[str, zarr.Array] = {}
        self._chunk_files: dict[str, ChunkFile | None] = {}
        self._stored: dict[str, tuple[np.dtype, str | None]] = {}
        self._digests: np.ndarray | None = None
        #: stores written before digests existed have no digest array
        self._has_digest = isinstance(self.root.get(BATCH_DIGEST), zarr.Array)
        #: the checksum columns; empty in a store written before checksums existed
        self._columns = checksum_columns(self.root)

    def committed(self) -> np.ndarray:
        """Row count per batch (0 = not committed)."""
        return np.asarray(self._progress[:])

    def uncommit(self, batches: list[int]) -> None:
        """Mark batches as not collected (their chunks are damaged), so they are written again."""
        for batch in batches:
            self._progress[batch] = 0

    def verify_batch(self, batch: int, token_ids: np.ndarray) -> None:
        """Refuse when committed batch `batch` holds other tokens than the source now gives.

        Compares digests; a store written before digests existed compares the stored ids.
        """
        if self._digests is None:
            has = self._has_digest
            stored = np.asarray(array_at(self.root, BATCH_DIGEST)[:]) if has else np.zeros(0)
            self._digests = stored.astype(np.int64)
        if batch < self._digests.size and self._digests[batch] != 0:
            same = int(self._digests[batch]) == batch_digest(token_ids)
        else:
            rows = self.plan.batch_rows(batch)
            stored_ids = np.asarray(self._array(TOKEN_IDS)[rows])
            same = np.array_equal(stored_ids[: token_ids.size], token_ids)
        if not same:
            raise ZipfstageError(
                f"batch {batch} of the data differs from the batch {batch} in {self.path} (the "
                "text source changed since it was collected); use --overwrite or another --out"
            )

    def write_batch(
        self,
        batch: int,
        token_ids: np.ndarray,
        positions: np.ndarray,
        values: Mapping[tuple[str, str], np.ndarray],
    ) -> None:
        """Write a batch's rows, then commit it. Rows must start at the batch's own offset.

        Each array's rows go straight to its chunk file (`ChunkFile`, no per-array zarr
        overhead): written in place in a store collected uncompressed, or as one whole chunk in
        an older compressed one; anything else (a short last batch there) goes through zarr, all
        arrays concurrently. The commit record follows only once every write has finished.
        """
        n = len(token_ids)
        start = self.plan.batch_rows(batch).start
        region = slice(start, start + n)
        writes = [
            (TOKEN_IDS, token_ids.astype(np.int32, copy=False)),
            (TOKEN_POSITIONS, positions.astype(np.int32, copy=False)),
        ]
        writes += [
            (name, self._encode(name, data))
            for name, data in ((metric_array_name(p, m), d) for (p, m), d in values.items())
        ]
        crcs = np.zeros(len(self._columns), dtype=np.uint32)
        try:
            rest: list[tuple[zarr.Array, slice, np.ndarray]] = []
            for name, data in writes:
                stored = self._as_stored(name, data)
                if self.checksums and name in self._columns:
                    crcs[self._columns[name]] = crc(stored)
                if not self._write_direct(name, start, stored):
                    rest.append((self._array(name), region, stored))
            digest = batch_digest(token_ids) if self._has_digest else 0
            per_batch = [(BATCH_DIGEST, np.array([digest], dtype=np.int64))] if digest else []
            if self._columns and self.checksums:
                per_batch.append((CHECKSUMS, checksum_row(crcs, n, digest)[None, :]))
            for name, row in per_batch:
                if not self._write_direct(name, batch, row):
                    rest.append((self._array(name), slice(batch, batch + 1), row))
            if rest:
                sync(_write_all(rest))
            if not self._write_direct(PROGRESS, batch, np.array([n], dtype=np.int32)):
                self._progress[batch] = n
        except OSError as exc:
            raise write_error(
                f"cannot write batch {batch} into {self.path} (the committed batches are kept)",
                exc,
            ) from None

    def _encode(self, name: str, data: np.ndarray) -> np.ndarray:
        """Values in the array's stored form (`store.values`): float32, float16 or bf16 bits."""
        if name not in self._stored:
            document = json.loads((self.path / name / "zarr.json").read_bytes())
            dtype = np.dtype(str(document.get("data_type")))
            self._stored[name] = (dtype, encoding_of(document.get("attributes") or {}))
        dtype, encoding = self._stored[name]
        if dtype == np.float32 and encoding is None:
            return data
        try:
            return encode(data, dtype, encoding)
        except InexactValues as exc:
            raise ZipfstageError(
                f"{name} is stored as {exc.kind} (the model's dtype), but this batch's values "
                f"are {exc}: collect with --dtype float32"
            ) from None

    def _as_stored(self, name: str, data: np.ndarray) -> np.ndarray:
        """`data` in the array's own dtype and C order: the bytes its checksum covers."""
        chunk_file = self._chunk_file(name)
        dtype = chunk_file.dtype if chunk_file is not None else self._array(name).dtype
        return np.ascontiguousarray(data, dtype=dtype)

    def _write_direct(self, name: str, start: int, data: np.ndarray) -> bool:
        """Straight to the chunk file (`ChunkFile`); False when zarr must write it.

        One thread: measured, two threads writing a batch's 622 chunks took as long as one (the
        file system serialises file creation, and 20 MB per batch go to the page cache).
        """
        chunk_file = self._chunk_file(name)
        return chunk_file is not None and chunk_file.write(start, data)

    def _chunk_file(self, name: str) -> ChunkFile | None:
        if name not in self._chunk_files:
            filled = name in FILLED_ON_CREATE
            self._chunk_files[name] = ChunkFile.at(self.path / name, filled=filled)
        return self._chunk_files[name]

    def _array(self, name: str) -> zarr.Array:
        """An array opened for writing every chunk, even one that is all fill value: a missing
        chunk file then always means damage."""
        if name not in self._arrays:
            array_at(self.root, name)  # a group at that path is a corrupt store
            self._arrays[name] = zarr.open_array(
                self.path / name, mode="r+", zarr_format=3, config={"write_empty_chunks": True}
            )
        return self._arrays[name]


def finalize_store(path: Path, n_batches: int, extra_attributes: Mapping[str, Any]) -> None:
    """Trim every array to the rows actually collected and mark the store complete."""
    root = zarr.open_group(Path(path), mode="r+", zarr_format=3)
    info = root_info(root)
    plan = StorePlan(**info["plan"])
    progress = array_at(root, PROGRESS)
    counts = np.asarray(progress[:n_batches])
    total_rows = int(counts.sum())
    expected_full = counts[:-1] == plan.rows_per_batch if n_batches > 1 else np.array([True])
    if not np.all(counts > 0) or not np.all(expected_full):
        raise RuntimeError("finalize_store called before every batch was committed")
    for name, array in _all_arrays(root):
        if name == PROGRESS:
            continue
        if name in (BATCH_DIGEST, CHECKSUMS):
            array.resize((n_batches, *array.shape[1:]))
            continue
        array.resize((total_rows, *array.shape[1:]))
    progress.resize((n_batches,))
    info.update(extra_attributes)
    info.update({"status": STATUS_COMPLETE, "n_tokens": total_rows, "n_batches": n_batches})
    root.attrs[ROOT_ATTR] = info


def update_attributes(path: Path, changes: Mapping[str, Any]) -> None:
    root = zarr.open_group(Path(path), mode="r+", zarr_format=3)
    info = root_info(root)
    info.update(changes)
    root.attrs[ROOT_ATTR] = info


def _all_arrays(group: zarr.Group, prefix: str = "") -> list[tuple[str, zarr.Array]]:
    found: list[tuple[str, zarr.Array]] = []
    for name, array in group.arrays():
        found.append((f"{prefix}{name}", array))
    for name, sub in group.groups():
        if name == FITS_GROUP:
            continue
        found.extend(_all_arrays(sub, f"{prefix}{name}/"))
    return found


async def _write_all(writes: list[tuple[zarr.Array, slice, np.ndarray]]) -> None:
    await asyncio.gather(
        *(array.async_array.setitem(region, data) for array, region, data in writes)
    )

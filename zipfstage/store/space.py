"""How much disk a store will take, from its plan alone, so collect can refuse before it starts.

collect creates each chunk file sparse (`chunk_write`), so a store takes blocks only for the rows
its batches write: the estimate counts, per array, the blocks its chunk files hold once every
planned token is in, plus a block each for its zarr.json and its folder. Compaction
(`store.compact`) writes each array's sharded copy beside the store and only then removes the
old one, so at its peak the disk holds the whole store plus the largest array's copy; the
estimate counts that copy at its uncompressed size (lz4 only shrinks it).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zipfstage.records import ATTN_METRICS, CHANNEL_WISE, TOPK_ABS
from zipfstage.store.layout import (
    BATCH_DIGEST,
    CHECKSUMS,
    PROGRESS,
    TOKEN_IDS,
    TOKEN_POSITIONS,
    StorePlan,
    metric_array_name,
)
from zipfstage.store.writer import TOPK_DTYPES, TopkLayout, batch_chunk, collect_chunk_rows

#: file system blocks of each node (array or group) besides its chunks: its folder and zarr.json
NODE_BLOCKS = 2
#: the per-batch arrays (progress, digest): bytes per batch; batch_checksum's depends on the
#: number of arrays it covers (a uint32 each, plus the seal)
PER_BATCH = {PROGRESS: 4, BATCH_DIGEST: 8}


@dataclass(frozen=True)
class PlannedArray:
    """One array as collect lays it out: rows, bytes per row, rows per chunk file."""

    name: str
    rows: int
    row_bytes: int
    chunk_rows: int


@dataclass(frozen=True)
class SpaceEstimate:
    """Bytes on disk (whole blocks) of a store collected to its planned size."""

    #: the whole store once every planned token is written, compaction aside
    store_bytes: int
    #: what compaction adds at its peak: the largest array's copy beside the store
    compaction_bytes: int
    #: data bytes per token and point (mean over points; tokens and bookkeeping aside)
    point_token_bytes: float
    tokens: int
    points: int

    def peak_bytes(self, compact: bool) -> int:
        return self.store_bytes + (self.compaction_bytes if compact else 0)


def planned_arrays(
    plan: StorePlan,
    points: list[str],
    metrics: list[str],
    point_channels: Mapping[str, list[int]],
    topk: Mapping[str, TopkLayout],
    value_dtype: str,
    attention: Mapping[str, int] | None = None,
) -> Iterator[PlannedArray]:
    """Every array `create_store` makes for this plan, with the same chunking."""
    rows = plan.planned_rows
    attention = attention or {}
    for name in (TOKEN_IDS, TOKEN_POSITIONS):
        yield PlannedArray(name, rows, 4, collect_chunk_rows(plan, 4))
    covered = 2 + len(points) * len(metrics) + len(topk) * len(TOPK_DTYPES)
    covered += len(attention) * len(ATTN_METRICS)
    per_batch = {**PER_BATCH, CHECKSUMS: 4 * (covered + 1)}
    for name, size in per_batch.items():
        yield PlannedArray(name, plan.planned_batches, size, batch_chunk(plan, size))
    for point in points:
        width = max(len(point_channels.get(point, [])), 1)
        for metric in metrics:
            row = np.dtype(value_dtype).itemsize * width if metric == CHANNEL_WISE else 4
            name = metric_array_name(point, metric)
            yield PlannedArray(name, rows, row, collect_chunk_rows(plan, row))
    for point, layout in topk.items():
        for name, (dtype, _) in TOPK_DTYPES.items():
            itemsize = np.dtype(value_dtype if name == TOPK_ABS else dtype).itemsize
            row = itemsize * max(layout.k, 1)
            array = metric_array_name(point, name)
            yield PlannedArray(array, rows, row, collect_chunk_rows(plan, row))
    for point, heads in attention.items():
        for metric in ATTN_METRICS:
            name, row = metric_array_name(point, metric), 4 * heads
            yield PlannedArray(name, rows, row, collect_chunk_rows(plan, row))


def estimate_space(
    arrays: list[PlannedArray], plan: StorePlan, tokens: int, block: int
) -> SpaceEstimate:
    """The blocks `arrays` take once `tokens` rows (their batches' entries) are written."""
    batches = math.ceil(tokens / plan.rows_per_batch)
    total = largest = 0
    data = 0
    for array in arrays:
        written = batches if array.name in (*PER_BATCH, CHECKSUMS) else tokens
        total += _allocated(written, array.row_bytes, array.chunk_rows, block)
        total += NODE_BLOCKS * block
        largest = max(largest, written * array.row_bytes)
        if array.name.startswith("metrics/"):
            data += array.row_bytes
    groups = 3 + len({a.name.rsplit("/", 1)[0] for a in arrays if a.name.startswith("metrics/")})
    total += groups * NODE_BLOCKS * block  # the root, tokens/, metrics/ and one per point
    n_points = max(len({a.name.split("/")[1] for a in arrays if a.name.startswith("metrics/")}), 1)
    return SpaceEstimate(total, _round_up(largest, block), data / n_points, tokens, n_points)


def _allocated(rows: int, row_bytes: int, chunk_rows: int, block: int) -> int:
    """Blocks of the chunk files holding `rows` rows: full chunks, then the partial last one."""
    full, rest = divmod(rows, chunk_rows)
    return full * _round_up(chunk_rows * row_bytes, block) + _round_up(rest * row_bytes, block)


def _round_up(size: int, block: int) -> int:
    return -(-size // block) * block


def block_size(folder: Path) -> int:
    """The file system's allocation unit at `folder` (4 KiB on most)."""
    return int(os.statvfs(existing_parent(folder)).f_frsize) or 4096


def free_bytes(folder: Path) -> int:
    """Bytes a user may still write on `folder`'s file system (`shutil.disk_usage`'s free)."""
    return int(shutil.disk_usage(existing_parent(folder)).free)


def allocated_bytes(folder: Path) -> int:
    """Blocks in use under `folder`, folders included (what `du` counts); 0 when it is missing."""
    total = 0
    for parent, _, files in os.walk(folder):
        for path in (parent, *(os.path.join(parent, name) for name in files)):
            try:
                total += os.lstat(path).st_blocks * 512
            except OSError:
                continue
    return total


def existing_parent(folder: Path) -> Path:
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    return folder

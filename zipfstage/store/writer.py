"""Create the store atomically and write batches so that a kill loses at most the batch in flight.

A batch's data goes in first, then its row count into `progress`: a batch is done once that count is
on disk. Only the coordinating process changes metadata (creation, the final resize), so worker
processes never hold a stale metadata handle that could undo a resize.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.core.sync import sync

from zipfstage.records import CHANNEL_WISE, TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN
from zipfstage.store.chunk_write import ChunkFile
from zipfstage.store.layout import (
    FITS_GROUP,
    PROGRESS,
    ROOT_ATTR,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    TOKEN_IDS,
    TOKEN_POSITIONS,
    StorePlan,
    array_at,
    metric_array_name,
    root_info,
)

_COMPRESSORS = [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")]
#: the top-k arrays' dtype and fill value (TOPK_CONTRACT.md): unwritten rows read NaN / -1 / 0
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
) -> None:
    """Lay out every array in a temporary folder, then move it into place in one rename.

    `topk` maps points to their top-k layout; those points get topk_abs/_channel/_sign [N, k].
    `point_channels` gives a point's own channel_wise indices (a d_ff site samples from d_ff).
    """
    path = Path(path)
    for leftover in path.parent.glob(f".{path.name}.creating-*"):  # from a killed creation
        shutil.rmtree(leftover, ignore_errors=True)
    staging = path.with_name(f".{path.name}.creating-{os.getpid()}")
    root = zarr.open_group(staging, mode="w", zarr_format=3)
    rows, chunk = plan.planned_rows, plan.rows_per_batch
    for name in (TOKEN_IDS, TOKEN_POSITIONS):
        root.create_array(
            name,
            shape=(rows,),
            chunks=(chunk,),
            dtype="int32",
            fill_value=-1,
            compressors=_COMPRESSORS,
        )
    for point in points:
        for metric in metrics:
            if metric == CHANNEL_WISE:
                channels = (point_channels or {}).get(point, channel_indices)
                width = len(channels)
                root.create_array(
                    metric_array_name(point, metric),
                    shape=(rows, width),
                    chunks=(chunk, max(width, 1)),
                    dtype="float32",
                    fill_value=float("nan"),
                    compressors=_COMPRESSORS,
                    attributes={"channels": channels},
                    dimension_names=("token", "channel"),
                )
            else:
                root.create_array(
                    metric_array_name(point, metric),
                    shape=(rows,),
                    chunks=(chunk,),
                    dtype="float32",
                    fill_value=float("nan"),
                    compressors=_COMPRESSORS,
                    dimension_names=("token",),
                )
    for point, layout in (topk or {}).items():
        _create_topk(root, point, layout, rows, chunk)
    root.create_array(
        PROGRESS, shape=(plan.planned_batches,), chunks=(1,), dtype="int32", fill_value=0
    )
    root.attrs[ROOT_ATTR] = {
        **attributes,
        "plan": plan.to_json(),
        "points": points,
        "metrics": [*metrics, *TOPK_DTYPES] if topk else metrics,
        "channel_indices": channel_indices,
        "status": STATUS_RUNNING,
    }
    if path.exists():
        shutil.rmtree(path)
    staging.rename(path)


def _create_topk(root: zarr.Group, point: str, layout: TopkLayout, rows: int, chunk: int) -> None:
    for name, (dtype, fill) in TOPK_DTYPES.items():
        root.create_array(
            metric_array_name(point, name),
            shape=(rows, layout.k),
            chunks=(chunk, max(layout.k, 1)),
            dtype=dtype,
            fill_value=fill,
            compressors=_COMPRESSORS,
            attributes={"width": layout.width, "k": layout.k, "k_requested": layout.k_requested},
            dimension_names=("token", "rank"),
        )


class StoreWriter:
    """Writes whole batches into an existing store; safe to use from several processes at once."""

    def __init__(self, path: Path) -> None:
        self.root = zarr.open_group(Path(path), mode="r+", zarr_format=3)
        self.plan = StorePlan(**root_info(self.root)["plan"])
        self._progress = array_at(self.root, PROGRESS)
        self._arrays: dict[str, zarr.Array] = {}
        self._chunk_files: dict[str, ChunkFile | None] = {}

    def committed(self) -> np.ndarray:
        """Row count per batch (0 = not committed)."""
        return np.asarray(self._progress[:])

    def write_batch(
        self,
        batch: int,
        token_ids: np.ndarray,
        positions: np.ndarray,
        values: Mapping[tuple[str, str], np.ndarray],
    ) -> None:
        """Write a batch's rows, then commit it. Rows must start at the batch's own offset.

        A whole batch is one chunk of each array: those chunks go straight to their files
        (`ChunkFile`, no per-array zarr overhead); anything else (a short last batch) goes through
        zarr, all arrays concurrently. The commit record follows only once every write has finished.
        """
        n = len(token_ids)
        start = self.plan.batch_rows(batch).start
        region = slice(start, start + n)
        writes = [
            (TOKEN_IDS, token_ids.astype(np.int32, copy=False)),
            (TOKEN_POSITIONS, positions.astype(np.int32, copy=False)),
        ]
        writes += [(metric_array_name(p, m), data) for (p, m), data in values.items()]
        rest = [
            (self._array(name), data)
            for name, data in writes
            if not self._chunk_file(name) or not self._chunk_file(name).write(start, data)  # type: ignore[union-attr]
        ]
        if rest:
            sync(_write_all(region, rest))
        self._progress[batch] = n

    def _chunk_file(self, name: str) -> ChunkFile | None:
        if name not in self._chunk_files:
            self._chunk_files[name] = ChunkFile.of(self._array(name))
        return self._chunk_files[name]

    def _array(self, name: str) -> zarr.Array:
        if name not in self._arrays:
            self._arrays[name] = array_at(self.root, name)
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


async def _write_all(region: slice, writes: list[tuple[zarr.Array, np.ndarray]]) -> None:
    await asyncio.gather(*(array.async_array.setitem(region, data) for array, data in writes))

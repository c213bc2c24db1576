"""Chunk-wise access to the top-k channel arrays, so memory stays bounded on multi-million-token
stores: one batch (one Zarr chunk) of one or two points at a time, committed rows only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import zarr

from zipfstage.point_names import parse_point
from zipfstage.records import TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN
from zipfstage.store.layout import TOKEN_IDS, TOKEN_POSITIONS, array_at, metric_array_name
from zipfstage.store.reader import StoreReader

MEDIAN_ABS = "median_abs"
HILL_TAIL = "hill_tail"


@dataclass(frozen=True)
class PointInfo:
    """Where a point sits: block index (-1 for embed), site, and the vector width there."""

    name: str
    layer: int
    site: str
    width: int
    k: int


@dataclass(frozen=True)
class Chunk:
    """One batch's committed rows of one point; `rows` are store row indices."""

    rows: np.ndarray
    ids: np.ndarray
    positions: np.ndarray
    abs: np.ndarray
    channel: np.ndarray
    sign: np.ndarray
    median: np.ndarray | None
    hill: np.ndarray | None


def _has(root: zarr.Group, name: str) -> bool:
    try:
        array_at(root, name)
    except (KeyError, TypeError):
        return False
    return True


def topk_points(reader: StoreReader) -> list[PointInfo]:
    """The store's points that carry the top-k arrays, in depth order."""
    found = []
    for name in reader.points:
        where = parse_point(name)
        if where is None or not _has(reader.root, metric_array_name(name, TOPK_ABS)):
            continue
        array = array_at(reader.root, metric_array_name(name, TOPK_ABS))
        width = int(array.attrs.get("width", array.shape[1]))  # type: ignore[arg-type]
        found.append(PointInfo(name, where[0], where[1], width, int(array.shape[1])))
    return found


def iter_chunks(reader: StoreReader, point: str, skip_positions: int = 0) -> Iterator[Chunk]:
    """Committed rows of `point`, one store chunk (batch) at a time."""
    root = reader.root
    arrays = {
        name: metric_array_name(point, name)
        for name in (TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN, MEDIAN_ABS, HILL_TAIL)
        if _has(root, metric_array_name(point, name))
    }
    committed = reader.committed_rows
    n_rows = min(len(committed), array_at(root, arrays[TOPK_ABS]).shape[0])
    step = reader.plan.rows_per_batch
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        keep = committed[start:stop]
        if not keep.any():
            continue
        positions = reader.read_rows(TOKEN_POSITIONS, start, stop, committed_only=False)
        keep = keep & (positions >= skip_positions)
        if not keep.any():
            continue

        def read(name: str, keep: np.ndarray = keep, start: int = start) -> np.ndarray | None:
            if name not in arrays:
                return None
            rows = reader.read_rows(arrays[name], start, start + len(keep), committed_only=False)
            return rows[keep]

        yield Chunk(
            rows=np.arange(start, stop)[keep],
            ids=reader.read_rows(TOKEN_IDS, start, stop, committed_only=False)[keep],
            positions=positions[keep],
            abs=np.asarray(read(TOPK_ABS), dtype=np.float64),
            channel=np.asarray(read(TOPK_CHANNEL), dtype=np.int64),
            sign=np.asarray(read(TOPK_SIGN), dtype=np.int8),
            median=_float(read(MEDIAN_ABS)),
            hill=_float(read(HILL_TAIL)),
        )


def _float(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else values.astype(np.float64)

"""On a GPU: one batch's hidden states staged per width, and every point of a width reduced at once.

Reducing each point by itself costs about 130 PyTorch operations per point, each a kernel launch
of a few microseconds whatever its size: 181 points make ~24,000 launches per batch, longer than
the forward they measure. So a hook only copies its state (as float32, the one conversion the
reduction needs) into a buffer that holds every point of that shape, and once the forward stops
(or the buffers reach their memory budget) each buffer is reduced as one [points x tokens, d]
matrix: the operations per batch grow with the number of widths, not of points. Every metric is
computed row by row, so stacking rows changes no formula.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from zipfstage.collect.metrics import (
    CHANNEL_WISE,
    TOPK_NAMES,
    HiddenStats,
    scalars_of,
    top_channels_block,
)
from zipfstage.collect.points import Point

Key = tuple[str, str]
#: host dtypes of the top-k arrays (they travel as float32: channel indices < 2**24 are exact)
TOPK_DTYPES: tuple[type[np.generic], ...] = (np.float32, np.int32, np.int8)
#: staging budget on a CPU (the torch path there is for tests and op counts)
CPU_LIMIT_BYTES = 512 * 2**20
#: on a GPU the staged states may take this share of its memory; the reduction of one width
#: needs a few times its states again in temporaries (|h|, h^2, the sort's values and indices)
GPU_MEMORY_SHARE = 1 / 32


@dataclass(frozen=True)
class Piece:
    """One (point, metric) array of a block: its shape on the host and its host dtype."""

    key: Key
    shape: tuple[int, ...]
    dtype: type[np.generic] = np.float32


@dataclass
class _Buffer:
    """The staged states of one shape on one device: rows [:count] of `data` are in use."""

    data: torch.Tensor
    points: list[Point] = field(default_factory=list)

    @property
    def slot_bytes(self) -> int:
        return self.data.element_size() * math.prod(self.data.shape[1:])


@dataclass(frozen=True)
class Staged:
    """Points of one width and their states stacked as [points x tokens, d] float32."""

    points: list[Point]
    rows: torch.Tensor


class StagedStates:
    """Device hidden states of a batch, copied into one float32 buffer per shape and device.

    Buffers are kept from batch to batch (the first batch grows them to the points it meets), so
    a steady batch costs one copy per point and no allocation. `hold` says when the staged
    states reach `limit_bytes` (default: 1/32 of the GPU's memory): reduce them then.
    """

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit_bytes = limit_bytes
        self._buffers: dict[tuple[tuple[int, ...], torch.device], _Buffer] = {}

    def hold(self, point: Point, hidden: torch.Tensor) -> bool:
        """Copy `hidden` into its buffer; True when the staged states now fill the budget."""
        shape = tuple(hidden.shape)
        key = (shape, hidden.device)
        buffer = self._buffers.get(key)
        if buffer is None:
            data = torch.empty((1, *shape), dtype=torch.float32, device=hidden.device)
            buffer = self._buffers[key] = _Buffer(data)
        count = len(buffer.points)
        if count == buffer.data.shape[0]:
            fits = self._limit(hidden.device) // buffer.slot_bytes
            buffer.data = _grown(buffer.data, count, max(count + 1, min(2 * count, fits)))
        buffer.data[count].copy_(hidden)
        buffer.points.append(point)
        return self.held_bytes() >= self._limit(hidden.device)

    def held_bytes(self) -> int:
        return sum(len(b.points) * b.slot_bytes for b in self._buffers.values())

    def allocated_bytes(self) -> int:
        """The staging buffers' size, held or not: at most the budget plus one state."""
        return sum(b.data.nbytes for b in self._buffers.values())

    def release(self) -> list[Staged]:
        """The staged states by shape, in the order each shape was first met; the buffers are
        reused by the next `hold`s, so reduce these first."""
        staged = []
        for buffer in self._buffers.values():
            if buffer.points:
                rows = buffer.data[: len(buffer.points)].view(-1, buffer.data.shape[-1])
                staged.append(Staged(buffer.points, rows))
                buffer.points = []
        return staged

    def _limit(self, device: torch.device) -> int:
        if self.limit_bytes is None:
            if device.type == "cuda":
                total = torch.cuda.get_device_properties(device).total_memory
                self.limit_bytes = int(total * GPU_MEMORY_SHARE)
            else:
                self.limit_bytes = CPU_LIMIT_BYTES
        return self.limit_bytes


def _grown(data: torch.Tensor, count: int, slots: int) -> torch.Tensor:
    """A buffer of `slots` slots holding the first `count` of `data`: twice as many, but no
    more than the budget holds (first batch only: later batches find the size they need)."""
    grown = torch.empty((slots, *data.shape[1:]), dtype=data.dtype, device=data.device)
    grown[:count].copy_(data[:count])
    return grown


@dataclass(frozen=True)
class WidthReduction:
    """What to compute for every staged width: scalar metrics, top-k, sampled channels.

    `compiled` runs the reduction through `torch.compile` (one graph per width and point
    count, made on the first batch): the elementwise passes fuse, fewer full-size passes; the
    values may differ from eager in the last bits (summation order), ~1e-6 relative.
    """

    scalar_metrics: list[str]
    topk: int
    hill_k: int | None
    channels_for: Callable[[torch.Tensor], torch.Tensor] | None
    compiled: bool = False

    def blocks(self, staged: Staged) -> list[tuple[torch.Tensor, list[Piece]]]:
        """One width's [metrics, rows], [3, rows, k] and [rows, channels] blocks, each with
        its pieces in memory order (metric-major, then point): a few dozen operations for any
        number of points."""
        rows, points = staged.rows, staged.points
        n = rows.shape[0] // len(points)
        k = min(self.topk, rows.shape[-1])
        picked = None if self.channels_for is None else self.channels_for(rows)
        compute = _compiled_reduction() if self.compiled else reduce_rows
        scalars, top, sampled = compute(rows, tuple(self.scalar_metrics), k, self.hill_k, picked)
        out: list[tuple[torch.Tensor, list[Piece]]] = []
        if scalars is not None:
            pieces = [Piece((p.name, m), (n,)) for m in self.scalar_metrics for p in points]
            out.append((scalars, pieces))
        if top is not None:
            kinds = zip(TOPK_NAMES, TOPK_DTYPES, strict=True)
            pieces = [Piece((p.name, m), (n, k), dtype) for m, dtype in kinds for p in points]
            out.append((top, pieces))
        if sampled is not None:
            width = sampled.shape[-1]
            out.append((sampled, [Piece((p.name, CHANNEL_WISE), (n, width)) for p in points]))
        return out


Blocks = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]


def reduce_rows(
    rows: torch.Tensor,
    names: tuple[str, ...],
    k: int,
    hill_k: int | None,
    picked: torch.Tensor | None,
) -> Blocks:
    """[names, rows] scalars, the [3, rows, k] top-k block and the [rows, picked] sampled
    channels of a [rows, d] float32 matrix (None for each not asked for), all in torch."""
    stats = HiddenStats(rows, hill_k, with_order=k > 0, numpy_sort=False)
    scalars = scalars_of(stats, list(names)) if names else None
    top = top_channels_block(stats, k) if k > 0 else None
    sampled = None if picked is None else rows.index_select(-1, picked)
    return scalars, top, sampled


@functools.cache
def _compiled_reduction() -> Callable[..., Blocks]:
    """`reduce_rows` compiled, made once per process (torch.compile specialises per shape)."""
    return torch.compile(reduce_rows, dynamic=False)

"""Reduce a CPU hidden state to metric intermediates, top-k and sampled channels, compiled.

The rows of all states are cut into one run of equal work per torch thread: one run goes in the
calling thread and the others on the shared pool (numpy's sort and the numba kernels release the
GIL). The reducer calls this once the forward pass has stopped, so these threads use the cores
torch's own threads just left. Each thread keeps a tile-sized |h| sort buffer from call to call,
so no full-size array is allocated per point.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from zipfstage.collect.cpu_kernels import ROW_FIELDS, gather_columns, reduce_rows
from zipfstage.collect.metrics import hill_order, scalars_of
from zipfstage.thread_pool import map_here_too

#: rows per tile of `_Reduction.run`: 128 x 576 float32 is 295 KB, inside a core's L2
TILE_ROWS = 128
#: metrics that read |h| sorted along channels (with the top-k family)
SORTED_METRICS = frozenset({"max_to_median", "median_abs", "gini", "hill_tail"})


class RowStats:
    """`metrics.Intermediates` read from the kernels' [ROW_FIELDS, tokens] float64 output."""

    def __init__(self, fields: np.ndarray, d: int, hill_k: int) -> None:
        self.fields = fields
        self.d = d
        self.hill_k = hill_k
        for index, name in enumerate(ROW_FIELDS):
            setattr(self, name, torch.from_numpy(fields[index]))

    l1: torch.Tensor
    sum_sq: torch.Tensor
    sum_fourth: torch.Tensor
    variance: torch.Tensor
    fourth_central: torch.Tensor
    energy_entropy: torch.Tensor
    max_abs: torch.Tensor
    median_abs: torch.Tensor
    gini_sum: torch.Tensor
    hill_log_excess: torch.Tensor
    hill_reference: torch.Tensor


@dataclass(frozen=True)
class TopChannels:
    """The k largest |h| per token, descending: float32 values, int32 channels, int8 signs."""

    values: np.ndarray
    channels: np.ndarray
    signs: np.ndarray


@dataclass(frozen=True)
class Reduced:
    """What the kernels give for one state: intermediates, top-k, and the sampled channels
    ([tokens, channels] float32; None when no channels were asked for)."""

    stats: RowStats
    top: TopChannels
    sampled: np.ndarray | None


@dataclass(frozen=True)
class _Reduction:
    """One state's inputs and outputs: the kernels fill `fields`, `top` and `sampled` in place."""

    h: np.ndarray
    order: int
    with_entropy: bool
    with_sorted: bool
    fields: np.ndarray
    top: TopChannels
    channels: np.ndarray | None
    sampled: np.ndarray | None

    @classmethod
    def of(
        cls,
        hidden: torch.Tensor,
        names: list[str],
        topk: int,
        hill_k: int | None,
        channels: np.ndarray | None,
    ) -> _Reduction:
        h = np.ascontiguousarray(hidden.detach().reshape(-1, hidden.shape[-1]).float().numpy())
        n, d = h.shape
        k = min(topk, d)
        if channels is not None and channels.size and not 0 <= channels.min() <= channels.max() < d:
            raise ValueError(f"channel indices must lie in [0, {d}); got {channels.tolist()}")
        return cls(
            h,
            hill_order(d, hill_k),
            "entropy" in names,
            k > 0 or not SORTED_METRICS.isdisjoint(names),
            np.empty((len(ROW_FIELDS), n), dtype=np.float64),
            TopChannels(
                np.empty((n, k), np.float32), np.empty((n, k), np.int32), np.empty((n, k), np.int8)
            ),
            channels,
            None if channels is None else np.empty((n, channels.size), dtype=np.float32),
        )

    def result(self) -> Reduced:
        return Reduced(RowStats(self.fields, self.h.shape[1], self.order), self.top, self.sampled)

    def run(self, rows: slice, sort_buffer: np.ndarray) -> None:
        """Rows `rows` through the kernels, a tile at a time; `sort_buffer` holds a tile.

        A tile (~150 KB of h and as much of sorted |h|) stays in the core's cache from the sort
        through every kernel pass and the channel sampling, so h is read from memory once.
        """
        first, stop, _ = rows.indices(self.h.shape[0])
        for start in range(first, stop, TILE_ROWS):
            tile = slice(start, min(start + TILE_ROWS, stop))
            h = self.h[tile]
            ascending = sort_buffer[: h.shape[0]] if self.with_sorted else sort_buffer[:0]
            if self.with_sorted:
                np.abs(h, out=ascending)
                ascending.sort(axis=-1)
            reduce_rows(
                h,
                ascending,
                self.order,
                self.with_entropy,
                self.with_sorted,
                self.fields[:, tile],
                self.top.values[tile],
                self.top.channels[tile],
                self.top.signs[tile],
            )
            if self.channels is not None and self.sampled is not None:
                gather_columns(h, self.channels, self.sampled[tile])


class CpuReducer:
    """Computes `RowStats`, `TopChannels` and sampled channels of [tokens, d] float32 matrices
    on the CPU.

    The rows of all matrices, in order, are cut into one run of equal work per thread at tile
    boundaries (`_balanced`): a thread mostly works through whole points, and at most one point
    is shared between two threads. Each thread keeps its tile-sized |h| sort buffer from call to
    call.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = max(1, threads or torch.get_num_threads())
        self._buffers: dict[tuple[int, int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def reduce(
        self,
        hidden: torch.Tensor,
        names: list[str],
        topk: int = 0,
        hill_k: int | None = None,
        channels: np.ndarray | None = None,
    ) -> Reduced:
        """Intermediates for `names`, the top-k channels (k = min(topk, d)) of `hidden`, and
        its columns `channels` when given."""
        return self.reduce_many([hidden], names, topk, hill_k, [channels])[0]

    def reduce_many(
        self,
        states: list[torch.Tensor],
        names: list[str],
        topk: int = 0,
        hill_k: int | None = None,
        channels: Sequence[np.ndarray | None] | None = None,
    ) -> list[Reduced]:
        """`reduce` of every state (with `channels[i]` for state i), using every thread."""
        picks = channels or [None] * len(states)
        reductions = [
            _Reduction.of(state, names, topk, hill_k, pick)
            for state, pick in zip(states, picks, strict=True)
        ]
        parts = _balanced(reductions, self.threads)
        with self._lock:  # one call at a time owns the sort buffers
            work = [(thread, items) for thread, items in enumerate(parts) if items]
            map_here_too(lambda job: self._run_part(*job), work)
        return [reduction.result() for reduction in reductions]

    def _run_part(self, thread: int, items: list[tuple[_Reduction, slice]]) -> None:
        for reduction, rows in items:
            reduction.run(rows, self._sort_buffer(thread, TILE_ROWS, reduction.h.shape[1]))

    def _sort_buffer(self, thread: int, n: int, d: int) -> np.ndarray:
        """An [n, d] float32 buffer owned by `thread`, kept from call to call."""
        buffer = self._buffers.get((thread, n, d))
        if buffer is None:
            buffer = self._buffers[(thread, n, d)] = np.empty((n, d), dtype=np.float32)
        return buffer


def scalars_of_many(stats: list[RowStats], names: list[str]) -> list[np.ndarray]:
    """[names, tokens] float32 per entry of `stats`, the formulas run once per vector width:
    31 points cost one formula pass, not 31 (each is ~50 small torch operations)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, entry in enumerate(stats):
        groups.setdefault((entry.d, entry.hill_k), []).append(index)
    results: list[np.ndarray] = [np.empty((len(names), 0), np.float32)] * len(stats)
    for (d, hill_k), members in groups.items():
        joined = np.concatenate([stats[i].fields for i in members], axis=1)
        values = scalars_of(RowStats(joined, d, hill_k), names).numpy()
        ends = np.cumsum([stats[i].fields.shape[1] for i in members])
        for i, part in zip(members, np.split(values, ends[:-1], axis=1), strict=True):
            results[i] = part
    return results


def _balanced(reductions: list[_Reduction], threads: int) -> list[list[tuple[_Reduction, slice]]]:
    """The states' rows, in order, cut into `threads` runs of equal work (rows x width) at tile
    boundaries: each thread mostly works through whole states, and 3 points on 2 threads cost
    1.5 points each, not 2 and 1."""
    tiles = [
        (reduction, start, min(start + TILE_ROWS, reduction.h.shape[0]))
        for reduction in reductions
        for start in range(0, reduction.h.shape[0], TILE_ROWS)
    ]
    weights = np.array([(stop - start) * r.h.shape[1] for r, start, stop in tiles], dtype=float)
    middles = np.cumsum(weights) - weights / 2  # each tile goes where its middle falls
    total = weights.sum()
    parts: list[list[tuple[_Reduction, slice]]] = [[] for _ in range(threads)]
    for (reduction, start, stop), middle in zip(tiles, middles, strict=True):
        thread = min(int(middle * threads / total), threads - 1)
        items = parts[thread]
        if items and items[-1][0] is reduction and items[-1][1].stop == start:
            items[-1] = (reduction, slice(items[-1][1].start, stop))  # extend the run
        else:
            items.append((reduction, slice(start, stop)))
    return parts

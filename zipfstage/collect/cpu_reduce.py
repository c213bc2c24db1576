"""Reduce a CPU hidden state to metric intermediates and top-k channels with compiled kernels.

The rows are split into one block per torch thread: one block runs in the calling thread and the
others on a small pool (numpy's sort and the numba kernels release the GIL). During a hook the
forward pass is paused, so these threads use the cores torch's own threads just left. The |h|
sort buffer is kept per shape and reused, so no full-size array is allocated per point.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from zipfstage.collect.cpu_kernels import ROW_FIELDS, reduce_rows
from zipfstage.collect.metrics import hill_order
from zipfstage.thread_pool import map_here_too

#: metrics that read |h| sorted along channels (with the top-k family)
SORTED_METRICS = frozenset({"max_to_median", "median_abs", "gini", "hill_tail"})


class RowStats:
    """`metrics.Intermediates` read from the kernels' [ROW_FIELDS, tokens] float64 output."""

    def __init__(self, fields: np.ndarray, d: int, hill_k: int) -> None:
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


class CpuReducer:
    """Computes `RowStats` and `TopChannels` of [tokens, d] float32 matrices on the CPU."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = max(1, threads or torch.get_num_threads())
        self._sorted: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def reduce(
        self, hidden: torch.Tensor, names: list[str], topk: int = 0, hill_k: int | None = None
    ) -> tuple[RowStats, TopChannels]:
        """Intermediates for `names` and the top-k channels (k = min(topk, d)) of `hidden`."""
        h = np.ascontiguousarray(hidden.detach().reshape(-1, hidden.shape[-1]).float().numpy())
        n, d = h.shape
        k = min(topk, d)
        order = hill_order(d, hill_k)
        with_sorted = k > 0 or not SORTED_METRICS.isdisjoint(names)
        fields = np.empty((len(ROW_FIELDS), n), dtype=np.float64)
        top = TopChannels(
            np.empty((n, k), np.float32), np.empty((n, k), np.int32), np.empty((n, k), np.int8)
        )
        with self._lock:  # one call at a time owns the shared sort buffer
            ascending = self._sort_buffer(n, d) if with_sorted else np.empty((0, d), np.float32)
            blocks = [b for b in np.array_split(np.arange(n), self.threads) if b.size]

            def run(rows: np.ndarray) -> None:
                part = slice(int(rows[0]), int(rows[-1]) + 1)
                if with_sorted:
                    np.abs(h[part], out=ascending[part])
                    ascending[part].sort(axis=-1)
                reduce_rows(
                    h[part],
                    ascending[part] if with_sorted else ascending,
                    order,
                    "entropy" in names,
                    with_sorted,
                    fields[:, part],
                    top.values[part],
                    top.channels[part],
                    top.signs[part],
                )

            map_here_too(run, blocks)
        return RowStats(fields, d, order), top

    def _sort_buffer(self, n: int, d: int) -> np.ndarray:
        buffer = self._sorted.get((n, d))
        if buffer is None:
            buffer = self._sorted[(n, d)] = np.empty((n, d), dtype=np.float32)
        return buffer

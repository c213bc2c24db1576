"""Input cleaning shared by every fitter: keep positive finite values, count what was dropped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prepared:
    """Sorted positive finite values, their unique values and where each unique value starts."""

    x: np.ndarray  # sorted float64
    unique: np.ndarray
    first: np.ndarray  # first[i] = index in x of the first occurrence of unique[i]
    n_dropped: int

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def prepare(values: np.ndarray, xmax: float | None = None) -> Prepared:
    """Drop non-positive and non-finite values (and values above `xmax`), sort, index ties."""
    x = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(x) & (x > 0)
    if xmax is not None:
        keep &= x <= xmax
    kept = np.sort(x[keep])
    return from_sorted(kept, n_dropped=int(x.size - kept.size))


def from_sorted(x: np.ndarray, n_dropped: int = 0) -> Prepared:
    """Index an already sorted, clean array (the bootstrap's fast path)."""
    if x.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return Prepared(x, x.copy(), empty, n_dropped)
    starts = np.empty(x.size, dtype=bool)
    starts[0] = True
    np.not_equal(x[1:], x[:-1], out=starts[1:])
    first = np.flatnonzero(starts).astype(np.int64)
    return Prepared(x, x[first], first, n_dropped)

"""Deterministic thinning for drawing millions of values: all of the extreme tail, a body sketch.

Sorted descending, the value of rank r sits at CCDF r/n. We keep every one of the `keep_top` largest
values (the points that decide a power law) and, below them, ranks spaced evenly in log(rank), which
is evenly spaced on a log-log plot's y axis. Nothing is random, so figures are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEEP_TOP = 5_000
BODY_POINTS = 2_000


@dataclass(frozen=True)
class SortedSample:
    """Positive values, largest first, thinned; `ranks` are their 1-based ranks among all `n`."""

    values: np.ndarray
    ranks: np.ndarray
    n: int
    n_dropped: int

    @property
    def ccdf(self) -> np.ndarray:
        """Empirical P(X >= value) at each kept value."""
        return self.ranks / self.n

    @property
    def empty(self) -> bool:
        return self.n == 0


def thin_ranks(n: int, keep_top: int = KEEP_TOP, body_points: int = BODY_POINTS) -> np.ndarray:
    """0-based indices into a descending sort of n values: all of the top, log-spaced below."""
    if n <= keep_top + body_points:
        return np.arange(n)
    top = np.arange(keep_top)
    body = np.geomspace(keep_top + 1, n, body_points).round().astype(np.int64) - 1
    return np.unique(np.concatenate([top, body, [n - 1]]))


def sorted_sample(
    raw: np.ndarray, keep_top: int = KEEP_TOP, body_points: int = BODY_POINTS
) -> SortedSample:
    """Drop non-finite and non-positive values (log axes), sort descending, thin."""
    raw = np.asarray(raw).ravel()
    kept = raw[np.isfinite(raw) & (raw > 0)]
    ordered = np.sort(kept)[::-1]
    index = thin_ranks(len(ordered), keep_top, body_points)
    return SortedSample(
        values=ordered[index].astype(np.float64),
        ranks=(index + 1).astype(np.float64),
        n=len(ordered),
        n_dropped=len(raw) - len(kept),
    )

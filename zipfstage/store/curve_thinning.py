"""Thin a scan curve for storage: a few hundred points show its shape as well as fifty thousand.

Channel fits scan every unique value of every sampled channel, so their curves outweigh the metrics
they were fitted to. Log-spacing in xmin matches how the curves are drawn (log x axis); the first
and last candidates and the chosen xmin are always kept exactly, so the marked minimum stays on
the line.
"""

from __future__ import annotations

import numpy as np

DEFAULT_POINTS = 300


def thin_indices(
    xmins: np.ndarray, chosen_index: int | None, n_points: int = DEFAULT_POINTS
) -> np.ndarray:
    """Sorted indices into `xmins` (ascending candidates) to keep: about `n_points` of them,
    log-spaced in xmin, always the first, the last and `chosen_index`."""
    x = np.asarray(xmins, dtype=np.float64)
    n = x.size
    if n <= n_points:
        return np.arange(n)
    picks = [np.array([0, n - 1])]
    if chosen_index is not None and 0 <= chosen_index < n:
        picks.append(np.array([chosen_index]))
    usable = np.flatnonzero(np.isfinite(x) & (x > 0))
    if usable.size >= 2 and x[usable[-1]] > x[usable[0]]:
        targets = np.geomspace(x[usable[0]], x[usable[-1]], n_points)
        # nearest usable candidate at or above each target (ties collapse where values are sparse)
        at = np.searchsorted(x[usable], targets, side="left").clip(0, usable.size - 1)
        picks.append(usable[at])
    else:  # no positive range to log-space over: even spacing by index
        picks.append(np.linspace(0, n - 1, n_points).round().astype(np.int64))
    return np.unique(np.concatenate(picks).astype(np.int64))


def thin_curve(
    xmins: np.ndarray,
    *values: np.ndarray,
    chosen_index: int | None,
    n_points: int = DEFAULT_POINTS,
) -> tuple[np.ndarray, ...]:
    """`xmins` and each of `values` (same length) at the kept indices, xmins first."""
    keep = thin_indices(xmins, chosen_index, n_points)
    return tuple(np.asarray(array)[keep] for array in (xmins, *values))


def chosen_index(xmins: np.ndarray, chosen_xmin: float | None, ks: np.ndarray | None) -> int | None:
    """Where the chosen xmin sits among the candidates; the KS minimum when it is not stored."""
    x = np.asarray(xmins, dtype=np.float64)
    if chosen_xmin is not None:
        hits = np.flatnonzero(x == chosen_xmin)
        if hits.size:
            return int(hits[0])
    if ks is not None and np.isfinite(np.asarray(ks, dtype=np.float64)).any():
        return int(np.nanargmin(np.asarray(ks, dtype=np.float64)))
    return None

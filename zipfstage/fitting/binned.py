"""alpha of a power-law tail stored on the bf16/fp16 grid, by the binned likelihood.

A value stored in bf16 stands for every real number that rounds to it: the bin between the
midpoints to its two grid neighbours. The continuous MLE reads each value as exact, so a steep
tail, which spans few grid steps, gets a biased alpha (README, "Intervals that miss their
estimate": Pareto alpha 40, 20,000 values, bf16 gives 44.9). The binned likelihood (Virkar &
Clauset 2014) gives each stored value the law's mass over its bin: with beta = alpha - 1 and x0
the lower edge of xmin's bin, log L = sum of log[(lo/x0)^-beta - (hi/x0)^-beta], which is concave
in beta; its score, sum of counts * (r / expm1(beta r) - log(lo/x0)) with r = log(hi/lo), falls
from +inf to a negative limit, so a bracketing root finder (scipy's brentq) solves it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from zipfstage.fitting.bootstrap import Rounding, round_to_bfloat16, round_to_float16

#: bf16 keeps float32's top 16 bits: the next bf16 number is one unit of bit 16 away
_BF16_STEP = np.uint32(1 << 16)


def grid_neighbours(values: np.ndarray, rounding: Rounding) -> tuple[np.ndarray, np.ndarray]:
    """The next grid number below and above each positive value of the bf16 or fp16 grid."""
    if rounding is round_to_bfloat16:
        bits = np.asarray(values, dtype=np.float32).view(np.uint32)
        below = (bits - _BF16_STEP).view(np.float32).astype(np.float64)
        above = (bits + _BF16_STEP).view(np.float32).astype(np.float64)
        return below, above
    if rounding is round_to_float16:
        half = np.asarray(values, dtype=np.float16)
        below = np.nextafter(half, np.float16(0)).astype(np.float64)
        above = np.nextafter(half, np.float16(np.inf)).astype(np.float64)
        return below, above
    raise ValueError("the binned alpha knows the bfloat16 and float16 grids only")


def binned_alpha(tail: np.ndarray, rounding: Rounding) -> float | None:
    """The binned-likelihood alpha of `tail` (every value at or above xmin, all on the grid of
    `rounding`); None when it has no finite maximum (every value in xmin's bin, or a grid
    neighbour outside the finite range)."""
    values, counts = np.unique(np.asarray(tail, dtype=np.float64), return_counts=True)
    if values.size < 2 or values[0] <= 0:
        return None
    below, above = grid_neighbours(values, rounding)
    if not (np.all(np.isfinite(above)) and np.all(below > 0)):
        return None
    lo = 0.5 * (values + below)
    hi = 0.5 * (values + above)
    offset = np.log(lo / lo[0])
    width = np.log(hi / lo)
    weights = counts.astype(np.float64)

    def score(beta: float) -> float:
        with np.errstate(over="ignore"):
            per_bin = width / np.expm1(beta * width)
        return float(np.sum(weights * (per_bin - offset)))

    # the continuous estimate n / sum(log(x / x0)) starts the bracket; double until it holds
    low = 1e-12
    high = 2.0 * float(weights.sum() / np.sum(weights * offset)) + 1.0
    for _ in range(200):
        if score(high) < 0:
            break
        low, high = high, 2.0 * high
    else:
        return None
    beta = brentq(score, low, high, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    return 1.0 + float(beta) if math.isfinite(beta) else None

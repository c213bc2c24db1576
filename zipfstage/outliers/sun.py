"""Sun et al. (2024), "Massive activations in large language models": the largest |h| over all
tokens and channels against the median |h|, and the tokens and channels that carry them.

The store keeps each token's top-k |h| and its median |h|, never the full token x channel tensor,
so the tensor's top-3 are exact (the tensor's 3 largest values are among the tokens' top-3) and
its median is estimated by `global_median` (see there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.outliers.source import Chunk

N_TOP = 3
Decode = Callable[[int], str | None]
#: median of the standard half-normal distribution, Phi^-1(3/4)
_HALF_NORMAL_MEDIAN = 0.6744897501960817


@dataclass
class MassiveAccumulator:
    """Running top-3 |h| (with channel, row, token, position) and all per-token medians."""

    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    channels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    medians: list[np.ndarray] = field(default_factory=list)

    def add(self, chunk: Chunk) -> None:
        width = min(N_TOP, chunk.abs.shape[1])
        shape = chunk.abs[:, :width].shape
        values = np.concatenate([self.values, chunk.abs[:, :width].ravel()])
        channels = np.concatenate([self.channels, chunk.channel[:, :width].ravel()])
        rows = np.concatenate([self.rows, np.broadcast_to(chunk.rows[:, None], shape).ravel()])
        ids = np.concatenate([self.ids, np.broadcast_to(chunk.ids[:, None], shape).ravel()])
        pos = np.broadcast_to(chunk.positions[:, None], shape).ravel()
        positions = np.concatenate([self.positions, pos])
        finite = np.isfinite(values) & (channels >= 0)
        order = np.flatnonzero(finite)[np.argsort(-values[finite], kind="stable")[:N_TOP]]
        self.values, self.channels, self.rows = values[order], channels[order], rows[order]
        self.ids, self.positions = ids[order], positions[order]
        if chunk.median is not None:
            self.medians.append(chunk.median)

    def token_medians(self) -> np.ndarray:
        return np.concatenate(self.medians) if self.medians else np.zeros(0)


def massive_summary(
    acc: MassiveAccumulator, sun_abs: float, sun_ratio: float, decode: Decode
) -> dict[str, Any]:
    """The contract's "massive" record of one point; `decode(token_id) -> str | None`."""
    medians = acc.token_medians()
    median_global = global_median(medians) if medians.size else None
    finite = medians[np.isfinite(medians)]
    median_token = float(np.median(finite)) if finite.size else None
    top1 = float(acc.values[0]) if acc.values.size else None
    ratio = None
    if top1 is not None and median_global is not None and median_global > 0:
        ratio = top1 / median_global
    criterion = None
    if top1 is not None and ratio is not None:
        criterion = bool(top1 > sun_abs and ratio >= sun_ratio)
    return {
        "top": [float(v) for v in acc.values],
        "top_channels": [int(c) for c in acc.channels],
        "top_tokens": [
            {"token_id": int(i), "text": decode(int(i)), "position": int(p), "row": int(r)}
            for i, p, r in zip(acc.ids, acc.positions, acc.rows, strict=True)
        ],
        "median_global": median_global,
        "median_token": median_token,
        "ratio": ratio,
        "criterion": criterion,
    }


def global_median(token_medians: np.ndarray) -> float | None:
    """Estimate the median |h| of the whole token x channel tensor from per-token medians.

    Model: token t's channel magnitudes are a scaled copy of one common shape, |h| = m_t * Z / mZ
    with Z half-normal (hidden states are near-Gaussian away from their few outliers; the top-k
    outliers sit far above every median and hardly move it). Then the tensor's CDF is
    F(x) = mean_t G(x / m_t) with G(1) = 1/2, and the estimate solves F(x) = 1/2 by bisection.
    Whatever the shape, the exact median lies between min_t m_t and max_t m_t (F is 1/2 or less
    at the smallest median and 1/2 or more at the largest), and the estimate stays there. It equals
    the exact median when every token has the same scale, and is unbiased for Gaussian scale
    mixtures; with other shapes the error is what tests/test_outliers_sun.py measures (a few %).
    Tokens whose median is 0 count as all mass at 0 (G = 1).
    """
    medians = token_medians[np.isfinite(token_medians) & (token_medians >= 0)]
    if medians.size == 0:
        return None
    values, counts = np.unique(medians, return_counts=True)  # bf16/fp16 medians tie heavily
    zeros = float(counts[values == 0].sum())
    values, counts = values[values > 0], counts[values > 0]
    total = zeros + counts.sum()
    if values.size == 0 or zeros >= total / 2:
        return 0.0
    lo, hi = np.log(values[0]), np.log(values[-1])
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        share = (zeros + np.dot(counts, _half_normal_cdf(np.exp(mid) / values))) / total
        lo, hi = (mid, hi) if share < 0.5 else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def _half_normal_cdf(z: np.ndarray) -> np.ndarray:
    """CDF of a half-normal scaled to median 1: erf(z * mZ / sqrt 2) (Abramowitz-Stegun 7.1.26,
    absolute error below 1.5e-7; numpy has no erf)."""
    x = z * (_HALF_NORMAL_MEDIAN / np.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return 1.0 - poly * np.exp(-x * x)

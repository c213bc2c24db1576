"""Are one token's channel magnitudes heavy-tailed? The Hill estimator of the tail index over the
token's largest |h| values, summarised over tokens by depth and by position.

Clauset's method needs the whole vector to choose xmin; the store keeps only the top-k, so the tail
is fitted with xmin fixed at the k-th value: alpha_hat = k_h / sum_{i<=k_h} log(x_(i) / x_(k_h+1))
with k_h = k - 1, the Hill estimator, which is the CSN maximum-likelihood alpha of the
survival-function tail for that xmin. Where collect stored `hill_tail` (its k_h = --hill-k, usually
larger), that is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.outliers.source import Chunk

#: position buckets the summary reports separately (the first token is its own bucket)
POSITION_BUCKETS = ((0, 1), (1, 16), (16, 128), (128, None))


def hill_from_topk(topk_abs: np.ndarray) -> np.ndarray:
    """Per token, the Hill tail index from sorted-descending top-k |h|; NaN where undefined."""
    values = np.asarray(topk_abs, dtype=np.float64)
    k_h = values.shape[1] - 1
    if k_h < 1:
        return np.full(values.shape[0], np.nan)
    floor = values[:, k_h : k_h + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(values[:, :k_h] / floor).sum(axis=1)
        alpha = k_h / logs
    bad = ~np.isfinite(floor[:, 0]) | (floor[:, 0] <= 0) | ~np.isfinite(alpha)
    return np.where(bad, np.nan, alpha)


@dataclass
class HillAccumulator:
    """Per-token tail indices of one point (from `hill_tail` when stored, else from the top-k)."""

    values: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    source: str = "topk"

    def add(self, chunk: Chunk) -> None:
        if chunk.hill is not None:
            self.source = "hill_tail"
            self.values.append(chunk.hill.astype(np.float32))
        else:
            self.values.append(hill_from_topk(chunk.abs).astype(np.float32))
        self.positions.append(chunk.positions)

    def summary(self) -> dict[str, Any] | None:
        values = np.concatenate(self.values) if self.values else np.zeros(0)
        positions = np.concatenate(self.positions) if self.positions else np.zeros(0)
        finite = np.isfinite(values)
        if not finite.any():
            return None
        q = np.quantile(values[finite], [0.1, 0.25, 0.5, 0.75, 0.9])
        by_position = {}
        for lo, hi in POSITION_BUCKETS:
            inside = finite & (positions >= lo) & (positions < (hi if hi is not None else np.inf))
            label = "0" if hi == 1 else (f"{lo}+" if hi is None else f"{lo}-{hi - 1}")
            by_position[label] = float(np.median(values[inside])) if inside.any() else None
        return {
            "median": float(q[2]),
            "q10": float(q[0]),
            "q25": float(q[1]),
            "q75": float(q[3]),
            "q90": float(q[4]),
            "n": int(finite.sum()),
            "source": self.source,
            "by_position": by_position,
        }

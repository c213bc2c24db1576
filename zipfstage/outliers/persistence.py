"""Channel persistence: which channels are a token's largest |h|, how often, with which sign,
on which tokens and positions, and at which layers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.outliers.source import Chunk, PointInfo
from zipfstage.outliers.sun import Decode

_TOKEN_KEY = 1 << 32
#: a channel "is present" at a layer when it is the top-1 of at least this share of its tokens,
#: and at least PRESENCE_OVER_UNIFORM times the share every channel would get by chance (1/width)
LAYER_PRESENCE = 0.01
PRESENCE_OVER_UNIFORM = 3.0


@dataclass
class PersistenceCounter:
    """Top-1 channel counts, sign sums, position-0 counts and position sums of one point."""

    width: int
    counts: np.ndarray = field(init=False)
    sign_sum: np.ndarray = field(init=False)
    first: np.ndarray = field(init=False)
    position_sum: np.ndarray = field(init=False)
    tokens: Counter[int] = field(default_factory=Counter)
    n_tokens: int = 0

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.width, dtype=np.int64)
        self.sign_sum = np.zeros(self.width, dtype=np.int64)
        self.first = np.zeros(self.width, dtype=np.int64)
        self.position_sum = np.zeros(self.width, dtype=np.float64)

    def add(self, chunk: Chunk) -> None:
        self.n_tokens += len(chunk.rows)
        top = chunk.channel[:, 0]
        valid = (top >= 0) & (top < self.width)
        top, sign = top[valid], chunk.sign[valid, 0].astype(np.int64)
        positions, ids = chunk.positions[valid], chunk.ids[valid].astype(np.int64)
        self.counts += np.bincount(top, minlength=self.width)
        self.sign_sum += np.bincount(top, weights=sign, minlength=self.width).astype(np.int64)
        self.first += np.bincount(top[positions == 0], minlength=self.width)
        self.position_sum += np.bincount(top, weights=positions, minlength=self.width)
        keys, n = np.unique(top * _TOKEN_KEY + np.maximum(ids, 0), return_counts=True)
        self.tokens.update(dict(zip(keys.tolist(), n.tolist(), strict=True)))

    def shares(self) -> dict[int, float]:
        """Top-1 share of every channel that is ever a top-1."""
        total = max(self.n_tokens, 1)
        return {int(c): float(self.counts[c] / total) for c in np.flatnonzero(self.counts)}

    def top_channels(self, n: int, decode: Decode) -> list[dict[str, Any]]:
        """The n most frequent top-1 channels, with sign consistency, positions and tokens."""
        order = np.argsort(-self.counts, kind="stable")[:n]
        per_channel: dict[int, list[tuple[int, int]]] = {}
        for key, count in self.tokens.items():
            per_channel.setdefault(key // _TOKEN_KEY, []).append((count, key % _TOKEN_KEY))
        records = []
        for channel in (int(c) for c in order if self.counts[c] > 0):
            count = int(self.counts[channel])
            common = sorted(per_channel.get(channel, []), reverse=True)[:3]
            records.append(
                {
                    "channel": channel,
                    "top1_share": count / max(self.n_tokens, 1),
                    "count": count,
                    "sign_consistency": abs(int(self.sign_sum[channel])) / count,
                    "sign": 1 if self.sign_sum[channel] >= 0 else -1,
                    "positions": {
                        "position_0_share": int(self.first[channel]) / count,
                        "mean_position": float(self.position_sum[channel] / count),
                    },
                    "tokens": [
                        {"token_id": tid, "text": decode(tid), "count": n} for n, tid in common
                    ],
                }
            )
        return records


def add_layers(
    points: dict[str, dict[str, Any]], infos: list[PointInfo], shares: dict[str, dict[int, float]]
) -> None:
    """Give each persistent channel the layers (same site) where it is present as a top-1."""
    for info in infos:
        same_site = [i for i in infos if i.site == info.site]
        for record in points[info.name].get("persistent_channels", []):
            channel = record["channel"]
            record["layers"] = [
                other.layer
                for other in same_site
                if shares[other.name].get(channel, 0.0)
                >= max(LAYER_PRESENCE, PRESENCE_OVER_UNIFORM / other.width)
            ]

"""Dettmers et al. (2022), LLM.int8(): outlier features are the few hidden dimensions whose
magnitude reaches 6.0 in at least 25 % of the layers and 6 % of the sequence positions.

Per point, a channel's position share is the share of tokens with |h_c| >= threshold, counted
from the top-k arrays: a channel outside a token's top-k is below that token's k-th value, so it
is below the threshold unless the k-th value itself reaches it. Those tokens are "censored" (their
k+1-th channel may also exceed the threshold) and counted, so the report can say when k is too
small. Layers are grouped by site (block outputs with block outputs, mlp_out with mlp_out); the
embedding is not a layer's output and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.outliers.source import Chunk, PointInfo


@dataclass
class DettmersCounter:
    """Per channel, how many tokens of one point reach the threshold."""

    width: int
    threshold: float
    counts: np.ndarray = field(init=False)
    n_tokens: int = 0
    censored: int = 0

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.width, dtype=np.int64)

    def add(self, chunk: Chunk) -> None:
        valid = (chunk.channel >= 0) & (chunk.channel < self.width)
        with np.errstate(invalid="ignore"):
            hit = valid & (chunk.abs >= self.threshold)
        self.counts += np.bincount(chunk.channel[hit], minlength=self.width)[: self.width]
        self.n_tokens += len(chunk.rows)
        with np.errstate(invalid="ignore"):
            self.censored += int(np.sum(chunk.abs[:, -1] >= self.threshold))

    def shares(self) -> np.ndarray:
        return self.counts / max(self.n_tokens, 1)


def dettmers_channels(
    per_point: list[tuple[PointInfo, np.ndarray]], layer_share: float, position_share: float
) -> list[dict[str, Any]]:
    """Channels whose position share reaches `position_share` in `layer_share` of a site's layers.

    `per_point` holds each point's position shares (DettmersCounter.shares). A record's
    position_share is the mean over the layers where the channel qualifies.
    """
    by_site: dict[str, list[tuple[PointInfo, np.ndarray]]] = {}
    for info, shares in per_point:
        if info.site != "embed":
            by_site.setdefault(info.site, []).append((info, shares))
    found: list[dict[str, Any]] = []
    for site, entries in by_site.items():
        width = max(len(shares) for _, shares in entries)
        stacked = np.zeros((len(entries), width))
        for row, (_, shares) in enumerate(entries):
            stacked[row, : len(shares)] = shares
        qualifies = stacked >= position_share
        layer_shares = qualifies.mean(axis=0)
        for channel in np.flatnonzero(qualifies.any(axis=0) & (layer_shares >= layer_share)):
            rows = qualifies[:, channel]
            found.append(
                {
                    "channel": int(channel),
                    "layer_share": float(layer_shares[channel]),
                    "position_share": float(stacked[rows, channel].mean()),
                    "max_position_share": float(stacked[:, channel].max()),
                    "site": site,
                    "layers": [int(entries[i][0].layer) for i in np.flatnonzero(rows)],
                }
            )
    found.sort(key=lambda r: (-r["layer_share"], -r["position_share"], r["channel"]))
    return found

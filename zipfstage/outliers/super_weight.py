"""Yu et al. (2024), "The super weight in large language models": one (row i, column j) of a
down projection makes a huge activation. Its signature with the input (mlp_act, width d_ff) and
output (mlp_out, width d_model) of the same MLP collected: a spike of max|mlp_act| at channel j,
and on the same tokens a spike of mlp_out at channel i. out_i = sum_j W[i, j] act_j, so the
candidate weight is W_down[i, j] of that layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.outliers.source import Chunk, PointInfo, iter_chunks
from zipfstage.store.reader import StoreReader

#: a token carries the spike when its |h| at the channel is at least this share of the maximum
SPIKE_SHARE = 0.5
#: the mlp_out spike must come back on at least this share of the mlp_act spike's tokens
MIN_COOCCURRENCE = 0.5


@dataclass
class ChannelMax:
    """The largest |h| each channel reaches over all tokens (from the top-k entries)."""

    width: int
    maxima: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.maxima = np.zeros(self.width)

    def add(self, chunk: Chunk) -> None:
        valid = (chunk.channel >= 0) & (chunk.channel < self.width) & np.isfinite(chunk.abs)
        np.maximum.at(self.maxima, chunk.channel[valid], chunk.abs[valid])

    def spike(self, ratio: float) -> tuple[int, float] | None:
        """(channel, max) when the top channel's max is `ratio` x the median channel max."""
        seen = self.maxima[self.maxima > 0]
        if seen.size < 2:
            return None
        channel = int(np.argmax(self.maxima))
        if self.maxima[channel] < ratio * float(np.median(seen)):
            return None
        return channel, float(self.maxima[channel])


def super_weight_pairs(infos: list[PointInfo]) -> list[tuple[PointInfo, PointInfo]]:
    """(mlp_act, mlp_out) point pairs of the same layer."""
    acts = {i.layer: i for i in infos if i.site == "mlp_act"}
    return [(acts[i.layer], i) for i in infos if i.site == "mlp_out" and i.layer in acts]


def super_weight_candidate(
    reader: StoreReader,
    act: tuple[PointInfo, ChannelMax],
    out: tuple[PointInfo, ChannelMax],
    ratio: float,
    skip_positions: int,
) -> dict[str, Any] | None:
    """The candidate (layer, row, column) when both spikes exist and share their tokens."""
    act_spike, out_spike = act[1].spike(ratio), out[1].spike(ratio)
    if act_spike is None or out_spike is None:
        return None
    (column, act_max), (row, out_max) = act_spike, out_spike
    spiking = together = 0
    chunks = zip(
        iter_chunks(reader, act[0].name, skip_positions),
        iter_chunks(reader, out[0].name, skip_positions),
        strict=True,
    )
    for act_chunk, out_chunk in chunks:
        at_act = _carries(act_chunk, column, SPIKE_SHARE * act_max)
        at_out = _carries(out_chunk, row, SPIKE_SHARE * out_max)
        spiking += int(at_act.sum())
        together += int((at_act & at_out).sum())
    if spiking == 0 or together / spiking < MIN_COOCCURRENCE:
        return None
    return {
        "layer": act[0].layer,
        "row": row,
        "column": column,
        "mlp_act_max": act_max,
        "mlp_out_max": out_max,
        "n_tokens": spiking,
        "cooccurrence": together / spiking,
    }


def _carries(chunk: Chunk, channel: int, floor: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.any((chunk.channel == channel) & (chunk.abs >= floor), axis=1)

"""Attention sinks per layer: Gu et al.'s sink share, and where sinks start against massive
activations.

Gu et al. (ICLR 2025) call a (layer, head) a sink head when its mean attention to the first
token exceeds eps = 0.3, the mean taken over every query position of T = 64-token sequences; the
share of such heads (Sink_1^eps) is 92-99 % in 7-8B models. Here the mean is over every query
position 0 .. T-1 of every collected sequence at the run's --seq-len, so the numbers compare with
theirs only at --seq-len 64. Sun et al. (2024) argue that massive activations make the sinks: the
first layer whose sink share reaches one half should then be the first massive layer or the one
after it (whose attention reads that layer's output); with every layer's resid_post collected
the analysis says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zipfstage.point_names import block_order, parse_point, point_name
from zipfstage.store.reader import StoreReader

#: Gu et al.'s threshold on a head's mean attention to position 0
SINK_EPS = 0.3
#: a layer is a sink layer once at least this share of its heads are sink heads
SINK_LAYER_SHARE = 0.5
#: Gu et al.'s sequence length: shares compare with theirs only there
GU_SEQ_LEN = 64


def sink_analysis(
    reader: StoreReader, first_massive_layer: int | None, n_layers: int | None
) -> dict[str, Any] | None:
    """The sink share of every attn point's layer; None when the store has no attn points."""
    names = sorted(reader.attention_points, key=block_order)
    if not names:
        return None
    layers = []
    for name in names:
        mean = np.nanmean(reader.metric(name, "sink"), axis=0).astype(np.float64)
        layers.append(
            {
                "layer": _layer(name),
                "point": name,
                "mean_sink": mean.tolist(),
                "sink_share": float(np.mean(mean > SINK_EPS)),
            }
        )
    every_mean = np.concatenate([layer["mean_sink"] for layer in layers])
    first_sink = next((x["layer"] for x in layers if x["sink_share"] >= SINK_LAYER_SHARE), None)
    every_resid = n_layers is not None and all(
        point_name(i) in reader.points for i in range(n_layers)
    )
    massive = first_massive_layer if every_resid else None
    return {
        "eps": SINK_EPS,
        "layer_share": SINK_LAYER_SHARE,
        "query_positions": "every query position 0 .. seq_len - 1 of every sequence",
        "seq_len": reader.plan.seq_len,
        "comparable_to_gu": reader.plan.seq_len == GU_SEQ_LEN,
        "layers": layers,
        "sink_share": float(np.mean(every_mean > SINK_EPS)),
        "first_sink_layer": first_sink,
        "every_resid_post": every_resid,
        "first_massive_layer": massive,
        "sink_layer_is": relation(first_sink, massive),
    }


def relation(first_sink: int | None, first_massive: int | None) -> str | None:
    """How the first sink layer sits against the first massive layer (Sun et al.'s story)."""
    if first_sink is None or first_massive is None:
        return None
    if first_sink == first_massive:
        return "the first massive layer"
    if first_sink == first_massive + 1:
        return "the layer after the first massive layer"
    return f"neither: {first_sink - first_massive:+d} layers from the first massive layer"


def _layer(name: str) -> int:
    where = parse_point(name)
    return -1 if where is None else where[0]

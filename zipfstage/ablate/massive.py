"""Where the massive activation is: the first massive layer, its channels and their size.

When the run collected every block output, the outlier analysis already knows the first massive
layer (`first_massive_layer` in outliers.json) and the store's top-k arrays give every channel's
largest |h| there. Otherwise `scan.scan_massive` finds it on a few eval batches with the same
criterion (Sun et al.: |h| above `sun_abs` and at least `sun_ratio` times the median |h|).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zipfstage.ablate.targets import Massive
from zipfstage.outliers.source import iter_chunks, topk_points
from zipfstage.outliers.super_weight import ChannelMax
from zipfstage.point_names import RESID_POST, point_name
from zipfstage.store.reader import StoreReader


def collected_every_layer(reader: StoreReader, n_layers: int) -> bool:
    """Whether every block output was collected with its top-k arrays."""
    names = {info.name for info in topk_points(reader) if info.site == RESID_POST}
    return all(point_name(layer) in names for layer in range(n_layers))


def massive_channels(maxima: np.ndarray, median: float, sun_abs: float, ratio: float) -> list[int]:
    """Channels whose largest |h| meets Sun's criterion, largest first."""
    floor = max(sun_abs, ratio * median)
    found = np.flatnonzero(maxima > floor)
    return [int(c) for c in found[np.argsort(-maxima[found], kind="stable")]]


def massive_from_store(reader: StoreReader, outliers: dict[str, Any]) -> Massive | None:
    """The analysis's first massive layer, its channels from the top-k arrays (None: none)."""
    first = outliers.get("first_massive_layer")
    if first is None:
        return None
    layer = max(int(first), 0)  # massive at the embedding: the first block output edits it
    name = point_name(layer)
    record = (outliers.get("points") or {}).get(name) or {}
    massive = record.get("massive") or {}
    median = massive.get("median_global")
    settings = outliers.get("settings") or {}
    info = next(i for i in topk_points(reader) if i.name == name)
    maxima = ChannelMax(info.width)
    for chunk in iter_chunks(reader, name):
        maxima.add(chunk)
    channels = massive_channels(
        maxima.maxima, float(median or 0.0), settings.get("sun_abs", 100.0),
        settings.get("sun_ratio", 1000.0),
    )  # fmt: skip
    if not channels:
        return None
    value = float(maxima.maxima[channels[0]])
    return Massive(layer, tuple(channels), value, f"outliers.json and the store's {name}")

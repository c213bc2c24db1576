"""Read RUN_DIR/outliers.json (see the outlier analysis's contract): only what compare draws.

Every key beyond points -> <point> -> massive is optional; a malformed or missing file gives no
rows and a note, never an error, because the fits alone are a valid comparison.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zipfstage.compare.depth import parse_point, relative_depth

OUTLIERS_JSON = "outliers.json"

#: (relative depth, sink share in [0, 1]) of each collected attn layer, shallow first
SinkShares = tuple[tuple[float, float], ...]


def read_sink_shares(data: dict[str, Any], n_layers: int) -> SinkShares:
    """outliers.json's attention_sinks as (depth, share); () when absent or malformed."""
    sinks = data.get("attention_sinks")
    layers = sinks.get("layers") if isinstance(sinks, dict) else None
    if not isinstance(layers, list):
        return ()
    shares = []
    for entry in layers:
        if not isinstance(entry, dict):
            continue
        layer, share = entry.get("layer"), entry.get("sink_share")
        if isinstance(layer, int) and isinstance(share, int | float) and math.isfinite(share):
            shares.append((relative_depth(layer, n_layers), float(share)))
    return tuple(sorted(shares))


@dataclass(frozen=True)
class Massive:
    """One point's largest |h| and its median, as the massive-activation papers tabulate them."""

    point: str
    layer: int
    site: str
    depth: float
    top: tuple[float, ...]
    median: float | None
    ratio: float | None
    criterion: bool | None


@dataclass(frozen=True)
class Outliers:
    points: list[Massive]
    first_massive_layer: int | None
    store_id: str | None
    #: the sink share by relative depth, when the run collected the attn site
    sinks: SinkShares = ()


def read_outliers(run_dir: Path, n_layers: int) -> tuple[Outliers | None, str | None]:
    """The file's massive-activation summaries, or (None, why) when there is nothing usable."""
    path = Path(run_dir) / OUTLIERS_JSON
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        points = data["points"]
        if not isinstance(points, dict):
            raise TypeError("points is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path} is not a readable outlier analysis ({type(exc).__name__})"
    layers = data.get("n_layers") if isinstance(data.get("n_layers"), int) else n_layers
    rows = [row for name, entry in points.items() if (row := _massive(name, entry, layers))]
    first = data.get("first_massive_layer")
    store_id = data.get("store_id")
    return Outliers(
        points=sorted(rows, key=lambda m: (m.depth, m.layer)),
        first_massive_layer=first if isinstance(first, int) else None,
        store_id=str(store_id) if store_id is not None else None,
        sinks=read_sink_shares(data, layers),
    ), None


def _massive(name: str, entry: Any, n_layers: int) -> Massive | None:
    massive = entry.get("massive") if isinstance(entry, dict) else None
    if not isinstance(massive, dict):
        return None
    top = tuple(v for v in (_number(x) for x in massive.get("top") or []) if v is not None)
    if not top:
        return None
    parsed = parse_point(name)
    layer = entry.get("layer") if isinstance(entry.get("layer"), int) else None
    if layer is None:
        layer = parsed[0] if parsed else -1
    site = entry.get("site") if isinstance(entry.get("site"), str) else None
    site = site or (parsed[1] if parsed else "resid_post")
    criterion = massive.get("criterion")
    return Massive(
        point=name,
        layer=layer,
        site=site,
        depth=relative_depth(layer, n_layers),
        top=top,
        median=_number(massive.get("median_global")),
        ratio=_number(massive.get("ratio")),
        criterion=criterion if isinstance(criterion, bool) else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None

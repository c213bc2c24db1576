"""Where a point sits: (layer, site) from its name, and its relative depth in the model.

Point names are `embed`, `layer_<i>` (the residual stream a block outputs) and `layer_<i>.<site>`
(a sub-layer site such as `mlp_act`). Relative depth is layer / (n_layers - 1), embed at 0, so
models of 12 and 36 layers share one axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from zipfstage.point_names import EMBED, RESID_POST, parse_point


@dataclass(frozen=True)
class PointPlace:
    """A point's block index (-1 for embed), its site, and its relative depth in [0, 1]."""

    point: str
    layer: int
    site: str
    depth: float

    @property
    def stream(self) -> str:
        """The series a point belongs to: embed joins the residual stream at depth 0."""
        return RESID_POST if self.site == EMBED else self.site


def relative_depth(layer: int, n_layers: int) -> float:
    """layer / (n_layers - 1); embed (layer -1) at 0; a one-layer model's only block at 0."""
    if layer < 0 or n_layers <= 1:
        return 0.0
    return layer / (n_layers - 1)


def place(name: str, n_layers: int) -> PointPlace | None:
    parsed = parse_point(name)
    if parsed is None:
        return None
    layer, site = parsed
    return PointPlace(name, layer, site, relative_depth(layer, n_layers))


def nearest(places: list[PointPlace], target: float) -> PointPlace | None:
    """The residual-stream point closest to a relative depth (the shallower one on a tie)."""
    stream = [p for p in places if p.stream == RESID_POST]
    if not stream:
        return None
    # rounded, so that depths equally far on paper (17/35 and 18/35 from 0.5) tie exactly
    return min(stream, key=lambda p: (round(abs(p.depth - target), 9), p.depth))

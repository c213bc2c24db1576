"""Collection points: `embed` (input to the first block) and `layer_<i>` (a block's output).

Users may also say first, middle, last, all and negative indices; points are stored under the
resolved names (`middle` of a 28-layer model is `layer_14`) in depth order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zipfstage.errors import ZipfstageError

EMBED = "embed"
EMBED_DEPTH = -1
_LAYER = re.compile(r"^layer_(-?\d+)$")
KNOWN_ALIASES = ("embed", "first", "middle", "last", "all", "layer_<i>")


@dataclass(frozen=True, order=True)
class Point:
    """A resolved collection point; depth -1 is the embedding output."""

    depth: int

    @property
    def name(self) -> str:
        return EMBED if self.depth == EMBED_DEPTH else f"layer_{self.depth}"


def resolve_points(requested: list[str], n_layers: int) -> list[Point]:
    """Turn user point names into distinct points in depth order, or explain what is wrong."""
    chosen: set[Point] = set()
    for raw in requested:
        name = raw.strip().lower()
        if name == "all":
            chosen.add(Point(EMBED_DEPTH))
            chosen.update(Point(i) for i in range(n_layers))
        elif name == EMBED:
            chosen.add(Point(EMBED_DEPTH))
        elif name == "first":
            chosen.add(Point(0))
        elif name == "middle":
            chosen.add(Point(n_layers // 2))
        elif name == "last":
            chosen.add(Point(n_layers - 1))
        elif match := _LAYER.match(name):
            index = int(match.group(1))
            resolved = index + n_layers if index < 0 else index
            if not 0 <= resolved < n_layers:
                raise ZipfstageError(
                    f"point {raw!r} is out of range: the model has {n_layers} layers "
                    f"(layer_0 .. layer_{n_layers - 1}, or -1 .. -{n_layers})"
                )
            chosen.add(Point(resolved))
        else:
            raise ZipfstageError(
                f"unknown point {raw!r}; use {', '.join(KNOWN_ALIASES)} (e.g. layer_3, layer_-1)"
            )
    return sorted(chosen)


def check_point_syntax(requested: list[str]) -> None:
    """Catch misspelt points before loading a model (ranges are checked once it is loaded)."""
    resolve_points([p for p in requested if not _LAYER.match(p.strip().lower())], n_layers=1)

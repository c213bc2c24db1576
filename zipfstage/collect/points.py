"""Collection points: `embed` (input to the first block) and the sites of each selected block.

Users name layers as first, middle, last, all, layer_<i> (negative counts from the end), and either
apply `--sites` to every selected layer or name one site directly as `<layer>.<site>`
(`middle.mlp_act`, `all.mlp_out`). Points are stored under resolved names (`middle` of a
28-layer model is `layer_14`, its mlp_act `layer_14.mlp_act`), sorted by layer and then by where
the forward pass reaches the site, so the last point is the one after which nothing is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from zipfstage.errors import ZipfstageError
from zipfstage.point_names import (
    ATTN,
    BLOCK_SITES,
    EMBED,
    EMBED_LAYER,
    RESID_POST,
    SITES,
    point_name,
)

EMBED_DEPTH = EMBED_LAYER
_LAYER = re.compile(r"^layer_(-?\d+)$")
KNOWN_ALIASES = ("embed", "first", "middle", "last", "all", "layer_<i>")
DEFAULT_SITES = (RESID_POST,)


@dataclass(frozen=True, order=True)
class Point:
    """A resolved collection point; depth -1 is the embedding output (its site is ignored)."""

    depth: int
    rank: int = field(default=BLOCK_SITES.index(RESID_POST), compare=True)

    @classmethod
    def at(cls, depth: int, site: str = RESID_POST) -> Point:
        rank = BLOCK_SITES.index(RESID_POST if depth == EMBED_DEPTH else site)
        return cls(depth, rank)

    @property
    def site(self) -> str:
        return EMBED if self.depth == EMBED_DEPTH else BLOCK_SITES[self.rank]

    @property
    def is_attention(self) -> bool:
        """The attn site: per-head attention statistics, not a hidden state."""
        return self.site == ATTN

    @property
    def name(self) -> str:
        return point_name(self.depth, self.site)


def resolve_sites(requested: list[str]) -> list[str]:
    """`--sites` names (or `all`, every hidden-state site) to sites in block order; `attn`
    (attention statistics) is named on its own, as `all,attn` or `attn`."""
    names = [s.strip().lower() for s in requested if s.strip()]
    if not names:
        raise ZipfstageError(
            f"--sites is empty; use one or more of {', '.join(BLOCK_SITES)}, or all"
        )
    for name in names:
        if name != "all":
            check_site(name)
    wanted = set(names) | (set(SITES) if "all" in names else set())
    return [s for s in BLOCK_SITES if s in wanted]


def check_site(name: str) -> None:
    if name not in BLOCK_SITES:
        raise ZipfstageError(f"unknown site {name!r}; use {', '.join(BLOCK_SITES)} or all")


def resolve_points(
    requested: list[str], n_layers: int, sites: list[str] | tuple[str, ...] = DEFAULT_SITES
) -> list[Point]:
    """Turn user point names into distinct points in block order, or explain what is wrong."""
    sites = resolve_sites(list(sites))
    chosen: set[Point] = set()
    for raw in requested:
        name = raw.strip().lower()
        layer_part, _, site = name.partition(".")
        if site:
            check_site(site)
        if layer_part == EMBED:
            if site:
                raise ZipfstageError(f"point {raw!r}: embed has no sites; use embed alone")
            chosen.add(Point.at(EMBED_DEPTH))
            continue
        if layer_part == "all" and not site:
            chosen.add(Point.at(EMBED_DEPTH))
        layers = _layers(layer_part, raw, n_layers)
        chosen.update(Point.at(i, s) for i in layers for s in ([site] if site else sites))
    return sorted(chosen)


def _layers(name: str, raw: str, n_layers: int) -> list[int]:
    if name == "all":
        return list(range(n_layers))
    if name in ("first", "middle", "last"):
        return [{"first": 0, "middle": n_layers // 2, "last": n_layers - 1}[name]]
    if match := _LAYER.match(name):
        index = int(match.group(1))
        resolved = index + n_layers if index < 0 else index
        if not 0 <= resolved < n_layers:
            raise ZipfstageError(
                f"point {raw!r} is out of range: the model has {n_layers} layers "
                f"(layer_0 .. layer_{n_layers - 1}, or -1 .. -{n_layers})"
            )
        return [resolved]
    raise ZipfstageError(
        f"unknown point {raw!r}; use {', '.join(KNOWN_ALIASES)} (e.g. layer_3, layer_-1), "
        f"optionally with .<site> ({', '.join(BLOCK_SITES)})"
    )


def check_point_syntax(requested: list[str], sites: list[str] | None = None) -> None:
    """Catch misspelt points and sites before loading a model (ranges wait for the model)."""
    resolve_sites(sites or list(DEFAULT_SITES))
    unchecked = [p for p in requested if not _LAYER.match(p.strip().lower().partition(".")[0])]
    resolve_points(unchecked, n_layers=1)
    for raw in requested:
        site = raw.strip().lower().partition(".")[2]
        if site:
            check_site(site)

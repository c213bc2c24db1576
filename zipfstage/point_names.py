"""The names of collection points in a store, and the one parser of them.

A point is `embed` (the input of the first block), `layer_<i>` (block i's output, the site
`resid_post`; the name stores had before sites existed), or `layer_<i>.<site>` for a place inside
block i. Pure string logic (no numpy, no torch), so every layer that reads a store can use it.
"""

from __future__ import annotations

import re

EMBED = "embed"
EMBED_LAYER = -1
RESID_POST = "resid_post"
#: the attention site: per-head attention statistics, not a hidden state (`--sites attn`)
ATTN = "attn"
#: one decoder block's hidden-state sites in the order the forward pass reaches them
#: (TransformerLens names); `--sites all` means these
SITES: tuple[str, ...] = ("attn_out", "resid_mid", "mlp_act", "mlp_out", RESID_POST)
#: every site of a block in forward order: the attention probabilities come before attn_out
BLOCK_SITES: tuple[str, ...] = (ATTN, *SITES)
SITE_DESCRIPTIONS: dict[str, str] = {
    ATTN: "per-head attention statistics (sink, first and previous token, max, entropy)",
    "attn_out": "attention output, before the residual add",
    "resid_mid": "residual stream between attention and MLP",
    "mlp_act": "input of the MLP's down projection",
    "mlp_out": "MLP output, before the residual add",
    RESID_POST: "block output (residual stream)",
}
_LAYER = re.compile(r"^layer_(\d+)$")
_SUB_LAYER = re.compile(r"^layer_(\d+)\.([a-z_]+)$")


def point_name(layer: int, site: str = RESID_POST) -> str:
    """The stored name of a site: `embed`, `layer_3` (resid_post) or `layer_3.mlp_act`."""
    if layer == EMBED_LAYER:
        return EMBED
    return f"layer_{layer}" if site == RESID_POST else f"layer_{layer}.{site}"


def parse_point(name: str) -> tuple[int, str] | None:
    """(layer, site) of a stored point name, embed being (-1, "embed"); None if not one."""
    if name == EMBED:
        return EMBED_LAYER, EMBED
    if match := _LAYER.match(name):
        return int(match.group(1)), RESID_POST
    if (match := _SUB_LAYER.match(name)) and match.group(2) in BLOCK_SITES[:-1]:
        return int(match.group(1)), match.group(2)
    return None


def block_order(name: str) -> tuple[int, int, str]:
    """Sort key: by layer, then by site in forward order; names that do not parse go last."""
    where = parse_point(name)
    if where is None:
        return (1 << 30, 0, name)
    layer, site = where
    return (layer, BLOCK_SITES.index(site) if site in BLOCK_SITES else -1, name)


def site_of(name: str) -> str:
    """The site of a point name (`resid_post` for names this module does not know)."""
    where = parse_point(name)
    return RESID_POST if where is None else where[1]

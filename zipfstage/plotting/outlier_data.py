"""Reading outliers.json for the figures: points of one site in depth order, axis labels."""

from __future__ import annotations

from typing import Any

#: how each site is drawn when several are collected (residual stream solid)
SITE_STYLES: dict[str, tuple[str, str]] = {
    "resid_post": ("-", "o"),
    "embed": ("-", "o"),
    "resid_mid": ("--", "s"),
    "attn_out": (":", "^"),
    "mlp_act": ("-.", "D"),
    "mlp_out": ((0, (5, 1.5, 1, 1.5, 1, 1.5)), "v"),  # type: ignore[dict-item]
}


def sites(outliers: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """{site: [(point, record), ...] by layer}; embed joins the block outputs (layer -1)."""
    grouped: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for point, record in (outliers.get("points") or {}).items():
        site = record.get("site", "resid_post")
        grouped.setdefault("resid_post" if site == "embed" else site, []).append((point, record))
    for entries in grouped.values():
        entries.sort(key=lambda e: e[1].get("layer", -1))
    return grouped


def layer_label(layer: int) -> str:
    return "emb" if layer < 0 else str(layer)

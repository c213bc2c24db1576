"""How often each channel is a token's largest |h|, by layer: a layer x channel map of the
channels that are ever a top-1 (the most frequent ones when there are too many to read)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from zipfstage.plotting import style
from zipfstage.plotting.dashboards import heatmap
from zipfstage.plotting.outlier_data import layer_label, sites

MAX_CHANNELS = 40


def outlier_channels_figure(outliers: dict[str, Any]) -> Figure | None:
    """One panel per site; None when no point records top-1 shares."""
    panels = []
    for site, entries in sites(outliers).items():
        shares = [{int(c): s for c, s in (r.get("top1_shares") or {}).items()} for _, r in entries]
        channels = sorted({c for row in shares for c in row})
        if channels:
            panels.append((site, entries, shares, channels))
    if not panels:
        return None
    widest = max(min(len(p[3]), MAX_CHANNELS) for p in panels)
    height = sum(1.3 + 0.3 * len(p[1]) for p in panels) + 0.4
    with style.styled():
        fig = style.new_figure((min(3.2 + 0.3 * widest, 16.0), height))
        ratios = [1.0 + len(p[1]) for p in panels]
        axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=ratios)[:, 0]
        for ax, (site, entries, shares, channels) in zip(axes, panels, strict=True):
            peak = {c: max(row.get(c, 0.0) for row in shares) for c in channels}
            kept = sorted(sorted(channels, key=lambda c: -peak[c])[:MAX_CHANNELS])
            values = np.array([[row.get(c, np.nan) for c in kept] for row in shares])
            labels = [f"{layer_label(r.get('layer', -1))}" for _, r in entries]
            heatmap(ax, values, labels, [str(c) for c in kept], "top-1 share", annotate=False)
            omitted = len(channels) - len(kept)
            more = f"; {omitted} rarer channels not shown" if omitted else ""
            ax.set_title(f"Top-1 channel share by layer \u00b7 {site}{more}", fontsize=11)
            ax.set_xlabel("channel")
            ax.set_ylabel("layer")
            ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    return fig

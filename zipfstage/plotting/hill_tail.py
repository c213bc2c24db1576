"""Per-token channel tails by depth: the Hill tail index of each token's largest |h|, its median
and quartiles over tokens against layer, and the median by position bucket."""

from __future__ import annotations

from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from zipfstage.plotting import style
from zipfstage.plotting.outlier_data import SITE_STYLES, layer_label, sites


def hill_tail_figure(outliers: dict[str, Any]) -> Figure | None:
    """Left: median and quartile band by layer per site; right: by position bucket."""
    grouped = {
        site: [(p, r) for p, r in entries if r.get("hill_tail")]
        for site, entries in sites(outliers).items()
    }
    grouped = {site: entries for site, entries in grouped.items() if entries}
    if not grouped:
        return None
    with style.styled():
        fig = style.new_figure(style.WIDE)
        left, right = fig.subplots(1, 2)
        cmap = colormaps[style.SEQUENTIAL_CMAP]
        buckets: list[str] = []
        for site, entries in grouped.items():
            linestyle, marker = SITE_STYLES.get(site, ("-", "o"))
            xs = [r["layer"] for _, r in entries]
            hill = [r["hill_tail"] for _, r in entries]
            left.fill_between(
                xs,
                [h["q25"] for h in hill],
                [h["q75"] for h in hill],
                color=style.DATA_COLOR,
                alpha=0.15,
                lw=0,
            )
            left.plot(
                xs,
                [h["median"] for h in hill],
                color=style.DATA_COLOR,
                ls=linestyle,
                marker=marker,
                ms=4,
                label=f"{site}: median (band: quartiles)",
            )
            buckets = buckets or list(hill[0].get("by_position") or {})
            for shade, bucket in zip(range(len(buckets)), buckets, strict=True):
                ys = [_nan((h.get("by_position") or {}).get(bucket)) for h in hill]
                color = cmap(0.85 * shade / max(len(buckets) - 1, 1))
                label = f"position {bucket}" if site == next(iter(grouped)) else None
                right.plot(xs, ys, color=color, ls=linestyle, marker=marker, ms=3.5, label=label)
        source = next(iter(grouped.values()))[0][1]["hill_tail"].get("source", "")
        for ax, title in ((left, "Hill tail index over tokens"), (right, "Median by position")):
            ax.set_xlabel("layer (emb = embedding output)")
            ax.set_title(title)
            ticks = sorted({r["layer"] for entries in grouped.values() for _, r in entries})
            step = max(1, len(ticks) // 12)
            ax.set_xticks(ticks[::step], [layer_label(t) for t in ticks[::step]])
        left.set_ylabel(f"tail index \u03b1 of channel |h| ({source})")
        left.legend(loc="best")
        right.legend(loc="best")
    return fig


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)

"""Sun et al.'s figure: the top-1, top-2, top-3 and median |h| against layer, on a log axis."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zipfstage.plotting import style
from zipfstage.plotting.outlier_data import SITE_STYLES, layer_label, sites

SERIES = (
    ("top-1", "#d1495b"),
    ("top-2", "#edae49"),
    ("top-3", "#2a9d8f"),
    ("median", "#1f3b73"),
)
#: top-1..3 often coincide (the same sink token in every sequence): wider lines underneath
WIDTHS = (3.2, 2.2, 1.2, 1.6)


def massive_figure(outliers: dict[str, Any]) -> Figure | None:
    """One line per quantity and site; None when no point has the numbers."""
    grouped = sites(outliers)
    if not grouped:
        return None
    with style.styled():
        fig = style.new_figure((7.8, 4.8))
        ax = fig.add_subplot()
        style.log_axes(ax, x=False)
        layers: set[int] = set()
        for site, entries in grouped.items():
            linestyle, marker = SITE_STYLES.get(site, ("-", "o"))
            xs = [record.get("layer", -1) for _, record in entries]
            layers.update(xs)
            for index, (_, color) in enumerate(SERIES):
                ys = [_value(record["massive"], index) for _, record in entries]
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    ls=linestyle,
                    marker=marker,
                    ms=2 + WIDTHS[index],
                    lw=WIDTHS[index],
                    zorder=2 + index,
                )
        settings = outliers.get("settings") or {}
        if settings.get("sun_abs"):
            ax.axhline(settings["sun_abs"], color=style.MUTED_COLOR, lw=0.9, ls=":")
        _mark_first(ax, outliers)
        ordered = sorted(layers)
        step = max(1, len(ordered) // 16)
        ax.set_xticks(ordered[::step], [layer_label(x) for x in ordered[::step]])
        ax.set_xlabel("layer (emb = embedding output)")
        ax.set_ylabel("|h| (log scale)")
        ax.set_title("Massive activations: largest and median |h| by layer")
        handles = [Line2D([], [], color=c, lw=2, label=label) for label, c in SERIES]
        handles += (
            [
                Line2D(
                    [],
                    [],
                    color="black",
                    ls=SITE_STYLES.get(s, ("-", "o"))[0],
                    marker=SITE_STYLES.get(s, ("-", "o"))[1],
                    ms=4,
                    label=s,
                )
                for s in grouped
            ]
            if len(grouped) > 1
            else []
        )
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _value(massive: dict[str, Any], index: int) -> float:
    """top-(index+1) |h|, or the whole-tensor median for the last series; NaN where missing."""
    if index == len(SERIES) - 1:
        value = massive.get("median_global")
    else:
        top = massive.get("top") or []
        value = top[index] if index < len(top) else None
    return float("nan") if value is None or value <= 0 else float(value)


def _mark_first(ax: Any, outliers: dict[str, Any]) -> None:
    """A vertical line at the first layer where Sun's criterion holds, with the channel."""
    first = outliers.get("first_massive_layer")
    if first is None:
        return
    channel = None
    for record in (outliers.get("points") or {}).values():
        if record.get("layer") == first and record["massive"].get("criterion"):
            channel = (record["massive"].get("top_channels") or [None])[0]
            break
    ax.axvline(first, color=style.FIT_COLOR, lw=0.9, ls="--")
    label = f"first massive: layer {layer_label(first)}"
    if channel is not None:
        label += f", channel {channel}"
    ax.annotate(
        label,
        (first, 0.55),
        xycoords=("data", "axes fraction"),
        xytext=(5, 0),
        textcoords="offset points",
        fontsize=9,
        color=style.FIT_COLOR,
        va="center",
        bbox=style.NOTE_BOX,
    )

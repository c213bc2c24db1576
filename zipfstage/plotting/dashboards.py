"""Heatmaps: alpha and OLS slope by (point, metric), and per-channel alpha by (point, channel)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from zipfstage.plotting import style
from zipfstage.point_names import parse_point, site_of
from zipfstage.records import CHANNEL_WISE, ChannelFits, FitRecord, FitTable, lookup

#: above this many points a dashboard drops its per-cell numbers and thins its rows
DENSE_ROWS = 48

QUANTITIES = {
    "alpha": ("\u03b1 (power-law exponent)", "Power-law exponent \u03b1 by point and metric"),
    "slope": (
        "OLS slope (log\u2013log)",
        "Rank\u2013frequency slope by point and metric",
    ),
}


def fit_value(fit: FitRecord, quantity: str) -> float | None:
    if quantity == "alpha":
        return fit.alpha if fit.ok else None
    return fit.slope


def dashboard_figure(
    quantity: str,
    points: list[str],
    metrics: list[str],
    table: FitTable,
    channels: ChannelFits,
) -> Figure:
    """Rows are points in depth order, columns metrics; channel_wise shows the channel median."""
    columns = [m for m in metrics if m != CHANNEL_WISE]
    with_channels = CHANNEL_WISE in metrics and any(channels.get(p) for p in points)
    values = np.full((len(points), len(columns) + with_channels), np.nan)
    empty: dict[tuple[int, int], str] = {}
    for i, point in enumerate(points):
        for j, metric in enumerate(columns):
            fit = lookup(table, point, metric)
            value = fit_value(fit, quantity)
            values[i, j] = np.nan if value is None else value
            empty[(i, j)] = "not fitted" if fit.status == "missing" else "no fit"
        if with_channels:
            found = [fit_value(f, quantity) for f in channels.get(point, [])]
            numbers = [v for v in found if v is not None]
            values[i, -1] = float(np.median(numbers)) if numbers else np.nan
    labels = columns + (["channel_wise\n(median)"] if with_channels else [])
    bar_label, title = QUANTITIES[quantity]
    crowded = len(labels) > 6  # narrower columns, slanted names: the report shows it page-wide
    # a run with every site has ~180 rows: thin rows without numbers keep the figure a page or
    # two tall and quick to draw (the fit table has the numbers)
    dense = len(points) > DENSE_ROWS
    with style.styled():
        fig = style.new_figure(
            (2.4 + (0.8 if crowded else 1.25) * len(labels),
             1.5 + (0.15 if dense else 0.42) * len(points))
        )  # fmt: skip
        ax = fig.add_subplot()
        heatmap(
            ax,
            values,
            row_labels=points,
            col_labels=labels,
            bar_label=bar_label,
            annotate=not dense,
            empty=empty,
        )
        if dense:
            ax.tick_params(axis="y", labelsize=6)
        if crowded:
            ax.tick_params(axis="x", labelrotation=35)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")
        ax.set_title(title)
        ax.set_xlabel("metric")
        ax.set_ylabel("point (shallow → deep)")
        separate_layers(ax, points)
    return fig


def separate_layers(ax: Axes, points: list[str]) -> None:
    """A rule between the rows of consecutive layers when a layer has several sites."""
    layers = [where[0] if (where := parse_point(p)) else None for p in points]
    if len(set(layers)) == len(layers):
        return
    for row in range(1, len(layers)):
        if layers[row] != layers[row - 1]:
            ax.axhline(row - 0.5, color="black", lw=1.2)


def channel_heatmap_figure(points: list[str], channels: ChannelFits) -> Figure:
    """Per-channel alpha (or OLS slope when no alpha was fitted) by point and sampled channel.

    mlp_act points (d_ff wide, their own channel sample) get a panel of their own: a channel
    index means a different channel there than in the residual stream.
    """
    all_fits = [f for p in points for f in channels.get(p, [])]
    quantity = "alpha" if any(f.ok for f in all_fits) else "slope"
    panels = [
        group
        for group in (
            [p for p in points if site_of(p) != "mlp_act"],
            [p for p in points if site_of(p) == "mlp_act"],
        )
        if group
    ]
    counts = [len(_channel_ids(group, channels)) for group in panels]
    annotate = max(counts, default=0) <= 16 and len(points) <= 24
    width = min(3.0 + (0.7 if annotate else 0.22) * max(counts, default=0), 16.0)
    heights = [1.0 + 0.38 * len(group) for group in panels]
    with style.styled():
        fig = style.new_figure((width, 0.6 + sum(heights)))
        axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
        for ax, group in zip(axes, panels, strict=True):
            _channel_panel(ax, group, channels, quantity, annotate)
        name = "\u03b1" if quantity == "alpha" else "OLS slope"
        axes[0].set_title(f"Per-channel {name} ({sum(counts)} sampled channels)")
    return fig


def _channel_ids(points: list[str], channels: ChannelFits) -> list[int]:
    return sorted({f.channel for p in points for f in channels.get(p, []) if f.channel is not None})


def _channel_panel(
    ax: Axes, points: list[str], channels: ChannelFits, quantity: str, annotate: bool
) -> None:
    channel_ids = _channel_ids(points, channels)
    column = {c: j for j, c in enumerate(channel_ids)}
    values = np.full((len(points), len(channel_ids)), np.nan)
    for i, point in enumerate(points):
        for f in channels.get(point, []):
            value = fit_value(f, quantity)
            if f.channel is not None and value is not None:
                values[i, column[f.channel]] = value
    heatmap(
        ax,
        values,
        row_labels=points,
        col_labels=[str(c) for c in channel_ids],
        bar_label=QUANTITIES[quantity][0],
        annotate=annotate,
    )
    mlp = all(site_of(p) == "mlp_act" for p in points)
    ax.set_xlabel("MLP channel index (d_ff)" if mlp else "hidden-state channel index")
    ax.set_ylabel("point (shallow → deep)")
    if len(channel_ids) > 24:
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)


def heatmap(
    ax: Axes,
    values: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    bar_label: str,
    annotate: bool,
    empty: dict[tuple[int, int], str] | None = None,
) -> None:
    """Annotated heatmap; NaN cells are grey and read `empty[(i, j)]` or 'n/a'."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    cmap = colormaps[style.HEATMAP_CMAP].with_extremes(bad=style.MISSING_CELL)
    # alpha spans 1.5 to hundreds across metrics: a log scale keeps the heavy tails (small alpha)
    # distinguishable instead of letting one steep metric wash out the rest
    norm: Normalize = LogNorm(low, high) if low > 0 and high / low > 10 else Normalize(low, high)
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(range(len(col_labels)), col_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label(bar_label)
    bar.outline.set_visible(False)
    if not annotate:
        return
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            red, green, blue, _ = cmap(norm(value))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.55
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if dark else "black",
            )
        else:
            ax.text(
                j,
                i,
                (empty or {}).get((i, j), "n/a"),
                ha="center",
                va="center",
                fontsize=8.5,
                color=style.MUTED_COLOR,
            )

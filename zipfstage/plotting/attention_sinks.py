"""Attention sinks: the layer x head map of mean attention on position 0, and the sink share by
layer, each with the first massive layer (Sun et al.) and the first sink layer marked."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from zipfstage.plotting import style

SINK_COLOR = style.DATA_COLOR
MASSIVE_COLOR = style.FIT_COLOR
FIRST_SINK_COLOR = style.ALT_COLOR


def attention_sinks_figure(outliers: dict[str, Any]) -> Figure | None:
    """Rows are layers (shallow at the top), columns heads; None without an attn analysis."""
    sinks = outliers.get("attention_sinks")
    if not sinks or not sinks.get("layers"):
        return None
    layers = [entry["layer"] for entry in sinks["layers"]]
    heads = max(len(entry["mean_sink"]) for entry in sinks["layers"])
    grid = np.full((len(layers), heads), np.nan)
    for row, entry in enumerate(sinks["layers"]):
        grid[row, : len(entry["mean_sink"])] = entry["mean_sink"]
    height = min(11.0, 2.2 + 0.26 * len(layers))
    with style.styled():
        fig = style.new_figure((min(11.0, 4.6 + 0.32 * heads), height))
        ax = fig.add_subplot()
        image = ax.imshow(grid, aspect="auto", cmap=style.SEQUENTIAL_CMAP, vmin=0, vmax=1)
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="mean attention on position 0", pad=0.02)
        step = max(1, len(layers) // 24)
        ax.set_yticks(range(0, len(layers), step), [str(x) for x in layers[::step]])
        ax.set_xticks(range(0, heads, max(1, heads // 16)))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        _mark_rows(ax, layers, outliers.get("first_massive_layer"), sinks.get("first_sink_layer"))
        ax.set_title(f"Attention sinks: mean attention on position 0 (T = {sinks['seq_len']})")
    return fig


def _mark_rows(ax: Axes, layers: list[int], massive: int | None, sink: int | None) -> None:
    """Outline the first massive layer's and the first sink layer's rows, labelled outside;
    labels of adjacent rows move apart (up for the shallower), one label when they coincide."""
    marks = [(massive, "first massive", MASSIVE_COLOR), (sink, "first sink", FIRST_SINK_COLOR)]
    shown = [(layer, label, color) for layer, label, color in marks if layer is not None]
    shown = [(layer, label, color) for layer, label, color in shown if layer in layers]
    if len(shown) == 2 and massive == sink:
        shown = [(shown[0][0], "first massive = first sink", MASSIVE_COLOR)]
    rows = [layers.index(layer) for layer, _, _ in shown]
    close = len(rows) == 2 and abs(rows[0] - rows[1]) <= 1
    left, right = ax.get_xlim()
    for index, ((layer, label, color), row) in enumerate(zip(shown, rows, strict=True)):
        shift = (7 if row == min(rows) else -7) if close else 0
        ax.add_patch(_rectangle(left, row - 0.5, right - left, color, inset=0.06 * index))
        ax.annotate(
            f"{label} ({layer})",
            (0, row),
            xycoords=("axes fraction", "data"),
            xytext=(-34, shift),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=8,
            color=color,
            annotation_clip=False,
        )


def _rectangle(left: float, bottom: float, width: float, color: str, inset: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(
        (left + inset, bottom + inset),
        width - 2 * inset,
        1 - 2 * inset,
        fill=False,
        edgecolor=color,
        lw=2,
    )


def sink_share_figure(outliers: dict[str, Any]) -> Figure | None:
    """The share of heads whose mean attention on position 0 exceeds eps, by layer."""
    sinks = outliers.get("attention_sinks")
    if not sinks or not sinks.get("layers"):
        return None
    layers = [entry["layer"] for entry in sinks["layers"]]
    shares = [100 * entry["sink_share"] for entry in sinks["layers"]]
    with style.styled():
        fig = style.new_figure((6.4, 5.2))
        ax = fig.add_subplot()
        ax.plot(layers, shares, color=SINK_COLOR, marker="o", ms=4, lw=1.6, label="sink share")
        ax.axhline(
            100 * sinks["layer_share"],
            color=style.MUTED_COLOR,
            lw=0.9,
            ls=":",
            label=f"sink layer: {100 * sinks['layer_share']:.0f} % of heads",
        )
        ax.set_ylim(-3, 103)
        for layer, label, color in (
            (outliers.get("first_massive_layer"), "first massive layer", MASSIVE_COLOR),
            (sinks.get("first_sink_layer"), "first sink layer", FIRST_SINK_COLOR),
        ):
            if layer is not None:
                ax.axvline(layer, color=color, lw=1.1, ls="--", label=f"{label} ({layer})")
        # below the axes: a line that rises from 0 to 100 % crosses any label placed inside
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
        ax.set_xlabel("layer")
        ax.set_ylabel(f"sink heads (%, mean attention on position 0 > {sinks['eps']})")
        ax.set_title(f"Sink share by layer (all {sinks['seq_len']} query positions)")
    return fig

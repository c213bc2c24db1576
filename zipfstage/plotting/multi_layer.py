"""Every collected point's CCDF of one metric, overlaid and coloured by depth."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from zipfstage.formatting import fmt_fixed
from zipfstage.plotting import style
from zipfstage.plotting.annotate import note
from zipfstage.plotting.ccdf import CCDF_LABEL
from zipfstage.plotting.samples import metric_label
from zipfstage.plotting.thinning import SortedSample
from zipfstage.records import FitRecord


def multi_layer_figure(metric: str, curves: list[tuple[str, SortedSample, FitRecord]]) -> Figure:
    """`curves` are (point, sample, fit) in depth order, shallowest first."""
    with style.styled():
        columns = 1 if len(curves) <= 12 else 2
        longest = max((len(point) for point, _, _ in curves), default=6) + 14
        legend_width = 0.35 + columns * (0.45 + 0.072 * longest)
        fig = style.new_figure((5.6 + legend_width, 4.8), style.Margins(right=legend_width))
        ax = fig.add_subplot()
        style.log_axes(ax)
        ax.set_xlabel(metric_label(metric))
        ax.set_ylabel(CCDF_LABEL)
        ax.set_title(f"CCDF by depth · {metric}")
        cmap = colormaps[style.SEQUENTIAL_CMAP]
        shades = np.linspace(0.0, 0.9, max(len(curves), 2))
        drawn = 0
        for (point, sample, fit), shade in zip(curves, shades, strict=False):
            if sample.empty:
                continue
            alpha = f"  (\u03b1 = {fmt_fixed(fit.alpha)})" if fit.ok else "  (no fit)"
            ax.plot(sample.values, sample.ccdf, color=cmap(shade), lw=1.5, label=f"{point}{alpha}")
            drawn += 1
        if drawn == 0:
            note(ax, "no positive finite values to draw")
        else:
            ax.legend(
                title="point (shallow → deep)",
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                ncols=columns,
            )
    return fig

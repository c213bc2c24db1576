"""Every collected point's CCDF of one metric, overlaid and coloured by depth.

With sub-layer sites the colour is the layer and the line style the site (as in the outlier
figures), so the curves of one block read as a group.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zipfstage.formatting import fmt_fixed
from zipfstage.plotting import style
from zipfstage.plotting.annotate import note
from zipfstage.plotting.ccdf import CCDF_LABEL
from zipfstage.plotting.outlier_data import SITE_STYLES
from zipfstage.plotting.samples import metric_label
from zipfstage.plotting.thinning import SortedSample
from zipfstage.point_names import parse_point
from zipfstage.records import FitRecord


def _shade_keys(points: list[str]) -> tuple[list[int], bool]:
    """One colour step per point, or per layer when several sites were collected."""
    where = [parse_point(p) for p in points]
    by_site = len({w[1] for w in where if w is not None and w[1] != "embed"}) > 1
    if not by_site:
        return list(range(len(points))), False
    layers = sorted({w[0] for w in where if w is not None})
    return [layers.index(w[0]) if w is not None else 0 for w in where], True


#: above this many curves a legend would not fit: a depth colour bar (and the sites' line styles)
LEGEND_CURVES = 40


def multi_layer_figure(metric: str, curves: list[tuple[str, SortedSample, FitRecord]]) -> Figure:
    """`curves` are (point, sample, fit) in depth order, shallowest first."""
    crowded = len(curves) > LEGEND_CURVES
    with style.styled():
        columns = 1 if len(curves) <= 12 else 2
        longest = max((len(point) for point, _, _ in curves), default=6) + 14
        legend_width = 2.6 if crowded else 0.35 + columns * (0.45 + 0.072 * longest)
        fig = style.new_figure((5.6 + legend_width, 4.8), style.Margins(right=legend_width))
        ax = fig.add_subplot()
        style.log_axes(ax)
        ax.set_xlabel(metric_label(metric))
        ax.set_ylabel(CCDF_LABEL)
        ax.set_title(f"CCDF by depth · {metric}")
        cmap = colormaps[style.SEQUENTIAL_CMAP]
        keys, by_site = _shade_keys([point for point, _, _ in curves])
        shades = np.linspace(0.0, 0.9, max(max(keys, default=0) + 1, 2))
        drawn = 0
        for (point, sample, fit), key in zip(curves, keys, strict=True):
            if sample.empty:
                continue
            alpha = f"  (\u03b1 = {fmt_fixed(fit.alpha)})" if fit.ok else "  (no fit)"
            where = parse_point(point)
            line = SITE_STYLES.get(where[1] if where else "", ("-", "o"))[0] if by_site else "-"
            ax.plot(
                sample.values,
                sample.ccdf,
                color=cmap(shades[key]),
                ls=line,
                lw=1.5,
                label=f"{point}{alpha}",
            )
            drawn += 1
        if drawn == 0:
            note(ax, "no positive finite values to draw")
        elif crowded:
            _depth_key(ax, cmap, shades, by_site)
        else:
            ax.legend(
                title="point (shallow → deep, sites in block order)"
                if by_site
                else "point (shallow → deep)",
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                ncols=columns,
            )
    return fig


def _depth_key(ax: Axes, cmap: Colormap, shades: np.ndarray, by_site: bool) -> None:
    """For many curves: a colour bar from shallow to deep, and the sites' line styles."""
    depth = ListedColormap(cmap(np.linspace(shades[0], shades[-1], 256)))
    scale = ScalarMappable(Normalize(0, len(shades) - 1), depth)
    bar = ax.figure.colorbar(scale, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label("layer (shallow \u2192 deep)" if by_site else "point (shallow \u2192 deep)")
    if by_site:
        handles = [
            Line2D([], [], color="0.3", ls=line, label=site)
            for site, (line, _) in SITE_STYLES.items()
        ]
        ax.legend(handles=handles, title="site", loc="center left", bbox_to_anchor=(1.22, 0.5))

"""The comparison figures: alpha by relative depth, CCDF overlays, massive activations by depth.

Each run keeps one colour in every figure; sub-layer sites get a panel each, so a site is only
ever drawn against the same site of another run.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zipfstage.compare.depth import RESID_POST, PointPlace
from zipfstage.compare.outliers import Massive
from zipfstage.formatting import fmt_fixed
from zipfstage.plotting.annotate import draw_interval, note
from zipfstage.plotting.samples import metric_label
from zipfstage.plotting.style import Margins, log_axes, new_figure, styled
from zipfstage.plotting.thinning import SortedSample
from zipfstage.records import FitRecord

RUN_COLORS = ("#1f3b73", "#d1495b", "#2a9d8f", "#edae49", "#7b2cbf", "#6c757d", "#00798c")
#: Clauset's verdict as a marker: filled = plausible, cross = ruled out, hollow = not tested
VERDICT_MARKERS = {"plausible": ("o", True), "ruled-out": ("X", True), "untested": ("o", False)}
VERDICT_NAMES = {"plausible": "plausible (p \u2265 0.1)", "ruled-out": "ruled out (p < 0.1)"}
AXES_HEIGHT = 3.4
LEGEND_LINE = 0.2
XLABEL_ROOM = 0.6
DEPTH_LABEL = "relative depth (layer / (n_layers \u2212 1); embed = 0)"


@dataclass(frozen=True)
class AlphaPoint:
    place: PointPlace
    fit: FitRecord
    verdict: str


@dataclass(frozen=True)
class Overlay:
    """One run's curve in a CCDF overlay: values already divided by the sample's median."""

    label: str
    point: str
    depth: float
    sample: SortedSample
    fit: FitRecord


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def _site_axes(fig: Figure, sites: list[str], sharey: bool = True) -> list[Axes]:
    axes = fig.subplots(1, len(sites), sharey=sharey, squeeze=False)[0]
    for ax, site in zip(axes, sites, strict=True):
        ax.set_xlim(-0.04, 1.04)
        ax.set_xlabel(DEPTH_LABEL if len(sites) == 1 else "relative depth")
        if len(sites) > 1:
            ax.set_title(site, fontsize=10.5, fontweight="normal")
    return list(axes)


def _below_axes(fig: Figure) -> dict[str, Any]:
    """Legend placement: hanging just under the x-axis label, centred."""
    height = fig.get_figheight()
    top = fig.subplotpars.bottom - XLABEL_ROOM / height
    return {"loc": "upper center", "bbox_to_anchor": (0.5, top), "borderaxespad": 0.0}


def _sites(streams: list[list[str]]) -> list[str]:
    found = {s for run in streams for s in run}
    return sorted(found, key=lambda s: (s != RESID_POST, s))


def wrap(label: str, width: int = 44) -> str:
    """Long run labels on several legend lines rather than cut off at the figure's edge."""
    return textwrap.fill(label, width, break_long_words=True) or label


def _lines(texts: list[str]) -> int:
    return sum(text.count("\n") + 1 for text in texts)


def _framed(n_panels: int, legend_lines: int, width: float | None = None) -> Figure:
    """A figure with fixed margins (constrained layout would cost as much as drawing): room on
    top for the titles, below for the axis label and a legend of `legend_lines` lines."""
    width = width or min(4.2 + 3.6 * n_panels, 19.0)
    bottom = 0.75 + LEGEND_LINE * legend_lines
    top = 0.75 if n_panels > 1 else 0.5
    return new_figure((width, AXES_HEIGHT + bottom + top), Margins(bottom=bottom, top=top))


#: the legend's key for a binned-likelihood alpha (README, "Binned alpha")
BINNED_KEY = "binned \u03b1, where the bf16 grid moves \u03b1 by > 2\u03c3"


def alpha_by_depth_figure(metric: str, runs: list[tuple[str, list[AlphaPoint]]]) -> Figure:
    """alpha (with its CI) by relative depth, one line per run, markers by Clauset's verdict."""
    with styled():
        sites = _sites([[a.place.stream for a in pts] for _, pts in runs]) or [RESID_POST]
        wrapped = [wrap(label) for label, _ in runs]
        binned = any(p.fit.ok and p.fit.binning_moves_alpha for _, pts in runs for p in pts)
        fig = _framed(len(sites), max(_lines(wrapped), len(VERDICT_MARKERS) + binned))
        axes = _site_axes(fig, sites)
        axes[0].set_ylabel("\u03b1 (power-law exponent)")
        fig.suptitle(f"\u03b1 by relative depth \u00b7 {metric}", fontweight="bold")
        for index, (_, points) in enumerate(runs):
            for ax, site in zip(axes, sites, strict=True):
                _alpha_series(ax, [p for p in points if p.place.stream == site], run_color(index))
        _legend(fig, wrapped, verdicts=True, binned=binned)
    return fig


def _alpha_series(ax: Axes, points: list[AlphaPoint], color: str) -> None:
    drawn = sorted((p for p in points if p.fit.ok), key=lambda p: p.place.depth)
    if not drawn:
        return
    x = np.array([p.place.depth for p in drawn])
    y = np.array([p.fit.alpha for p in drawn], dtype=float)
    ax.plot(x, y, color=color, lw=1.4, alpha=0.85)
    for point, xi, yi in zip(drawn, x, y, strict=True):
        if point.fit.alpha_ci is not None:
            draw_interval(ax, xi, point.fit.alpha_ci, color)
        marker, filled = VERDICT_MARKERS.get(point.verdict, ("o", False))
        face = color if filled else "white"
        ax.plot(xi, yi, marker=marker, ms=7, mfc=face, mec=color, mew=1.4, ls="none", zorder=3)
        binned = point.fit.alpha_binned
        if binned is not None and point.fit.binning_moves_alpha:  # the grid biases alpha
            ax.plot(xi, binned, marker="_", ms=12, mew=2.0, color=color, ls="none")


def _legend(
    fig: Figure,
    labels: list[str],
    verdicts: bool = False,
    styles: bool = False,
    binned: bool = False,
) -> None:
    """Runs in the left column, marker or line-style keys in the right one, below the axes."""
    runs = [Line2D([], [], color=run_color(i), lw=2) for i in range(len(labels))]
    keys: list[Line2D] = []
    names: list[str] = []
    if verdicts:
        for kind, (marker, filled) in VERDICT_MARKERS.items():
            face = "#444444" if filled else "white"
            keys.append(Line2D([], [], marker=marker, ls="none", mfc=face, mec="#444444", ms=7))
            names.append(VERDICT_NAMES.get(kind, "not tested (no bootstrap)"))
    if binned:
        keys.append(Line2D([], [], marker="_", ls="none", color="#444444", ms=12, mew=2.0))
        names.append(BINNED_KEY)
    if styles:
        keys += [
            Line2D([], [], color="#444444", lw=1.8, marker="o", ms=4),
            Line2D([], [], color="#444444", ls="--", marker="s", ms=3.5, mfc="white"),
        ]
        names += ["top-1 |h|", "median |h|"]
    rows = max(len(runs), len(keys))
    blank = Line2D([], [], lw=0)
    handles = runs + [blank] * (rows - len(runs)) + keys + [blank] * (rows - len(keys))
    texts = labels + [""] * (rows - len(runs)) + names + [""] * (rows - len(keys))
    fig.legend(handles, texts, ncols=2 if keys else 1, **_below_axes(fig))


def ccdf_overlay_figure(metric: str, which: str, curves: list[tuple[int, Overlay]]) -> Figure:
    """The runs' CCDFs near one relative depth, each divided by its median so shapes compare."""
    drawn = [(i, c) for i, c in curves if not c.sample.empty]
    texts = [
        f"{wrap(c.label, 40)}\n{c.point} (depth {c.depth:.2f}), "
        + (f"\u03b1 = {fmt_fixed(c.fit.alpha)}" if c.fit.ok else "no fit")
        for _, c in drawn
    ]
    first_column = texts[: (len(texts) + 1) // 2]
    with styled():
        fig = _framed(1, _lines(first_column) + len(first_column) // 2, width=8.2)
        ax = fig.add_subplot()
        log_axes(ax)
        ax.set_xlabel(f"{metric_label(metric)} \u00f7 its median")
        ax.set_ylabel("P(X \u2265 x)")
        ax.set_title(f"CCDF at the {which} depth \u00b7 {metric}")
        for index, curve in drawn:
            ax.plot(curve.sample.values, curve.sample.ccdf, color=run_color(index), lw=1.6)
        if not drawn:
            note(ax, "no positive finite values to draw at this depth")
        handles = [Line2D([], [], color=run_color(i), lw=2) for i, _ in drawn]
        fig.legend(handles, texts, ncols=2, **_below_axes(fig))
    return fig


def massive_by_depth_figure(runs: list[tuple[int, str, list[Massive]]]) -> Figure:
    """Top-1 |h| (solid) and the median |h| (dashed) against relative depth, per run, log y."""
    with styled():
        sites = _sites([[_stream(m) for m in rows] for _, _, rows in runs]) or [RESID_POST]
        wrapped = [wrap(label) for _, label, _ in runs]
        fig = _framed(len(sites), max(_lines(wrapped), 2))
        axes = _site_axes(fig, sites)
        axes[0].set_ylabel("|activation| (log scale)")
        fig.suptitle("Massive activations by relative depth", fontweight="bold")
        for ax in axes:
            log_axes(ax, x=False)
        for index, _, rows in runs:
            for ax, site in zip(axes, sites, strict=True):
                mine = sorted((m for m in rows if _stream(m) == site), key=lambda m: m.depth)
                depth = [m.depth for m in mine]
                ax.plot(depth, [m.top[0] for m in mine], color=run_color(index), marker="o", ms=4)
                medians = [(m.depth, m.median) for m in mine if m.median and m.median > 0]
                if medians:
                    x, y = zip(*medians, strict=True)
                    color = run_color(index)
                    ax.plot(x, y, color=color, ls="--", lw=1.2, marker="s", ms=3.5, mfc="white")
        _legend(fig, wrapped, styles=True)
    return fig


def _stream(massive: Massive) -> str:
    return RESID_POST if massive.site == "embed" else massive.site

"""Zipf's view: value against rank on log-log axes, with the OLS line, its slope and R²."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from zipfstage.plotting import style
from zipfstage.plotting.annotate import note, wrap
from zipfstage.plotting.data import metric_label
from zipfstage.plotting.records import Fit
from zipfstage.plotting.thinning import SortedSample


def rank_frequency_figure(sample: SortedSample, fit: Fit) -> Figure:
    with style.styled():
        fig = style.new_figure(style.SINGLE, style.Margins())
        ax = fig.add_subplot()
        style.log_axes(ax)
        ax.set_xlabel("rank (1 = largest value)")
        ax.set_ylabel(metric_label(fit.metric))
        ax.set_title(f"Rank\u2013frequency · {fit.point} · {fit.metric}")
        if sample.empty:
            note(ax, "no positive finite values to draw")
            return fig
        ax.plot(sample.ranks, sample.values, color=style.DATA_COLOR, lw=0, marker=".", ms=2.2,
                alpha=0.55, label=f"data (N = {sample.n:,})",
                rasterized=len(sample.values) > 3000)
        if fit.slope is None:
            note(ax, "No OLS line drawn:\n" + wrap(fit.why_not or "the fit stored no slope"))
        else:
            intercept = ols_intercept(sample, fit.slope)
            ranks = np.array([1.0, float(sample.n)])
            r2 = f",  R² = {fit.r2:.3f}" if fit.r2 is not None else ""
            ax.plot(ranks, 10 ** intercept * ranks ** fit.slope, color=style.FIT_COLOR, lw=1.8,
                    label=f"OLS fit: slope = {fit.slope:.3f}{r2}")
        ax.legend(loc="lower left")
    return fig


def ols_intercept(sample: SortedSample, slope: float) -> float:
    """log10 intercept that puts a line of the fit's slope through the drawn points' centroid
    (log-spaced ranks, so the body and the tail weigh alike)."""
    wanted = np.geomspace(1, sample.n, 200)
    index = np.unique(np.searchsorted(sample.ranks, wanted).clip(0, len(sample.ranks) - 1))
    log_rank = np.log10(sample.ranks[index])
    log_value = np.log10(sample.values[index])
    return float(np.mean(log_value - slope * log_rank))

"""Zipf's view: value against rank on log-log axes, with the OLS line, its slope and R²."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from zipfstage.plotting import style
from zipfstage.plotting.annotate import note, wrap
from zipfstage.plotting.samples import metric_label
from zipfstage.plotting.thinning import SortedSample
from zipfstage.records import FitRecord


def rank_frequency_figure(sample: SortedSample, fit: FitRecord) -> Figure:
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
        style.plot_data(ax, sample.ranks, sample.values, sample.n)
        if fit.slope is None or fit.intercept is None:
            note(ax, "No OLS line drawn:\n" + wrap(fit.why_not or "the fit stored no slope"))
        else:
            ranks, line = ols_line(sample, fit)
            r2 = f",  R² = {fit.r2:.3f}" if fit.r2 is not None else ""
            ax.plot(
                ranks,
                line,
                color=style.FIT_COLOR,
                lw=1.8,
                label=f"OLS over the tail: slope = {fit.slope:.3f}{r2}",
            )
        ax.legend(loc="lower left")
    return fig


def ols_line(sample: SortedSample, fit: FitRecord) -> tuple[np.ndarray, np.ndarray]:
    """The fit's OLS line over its tail (x >= xmin), in the plotted sample's ranks.

    The fit ran on a subsample of `fit.n` values; a rank r there stands for rank r * N / n among
    all N plotted values, which shifts the log-log intercept by -slope * log10(N / n).
    """
    assert fit.slope is not None and fit.intercept is not None
    scale = sample.n / fit.n if fit.n else 1.0
    tail_ranks = fit.n_tail if fit.n_tail else fit.n or sample.n
    ranks = np.array([1.0, max(float(tail_ranks) * scale, 1.0)])
    intercept = fit.intercept - fit.slope * np.log10(scale)
    return ranks, 10**intercept * ranks**fit.slope

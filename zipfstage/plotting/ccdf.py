"""The empirical CCDF of all the data with the fitted power-law tail and its best alternative."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from zipfstage.formatting import fmt_fixed, fmt_number
from zipfstage.plotting import style
from zipfstage.plotting.annotate import fit_summary, wrap
from zipfstage.plotting.samples import metric_label
from zipfstage.plotting.tail_models import (
    alternative_ccdf,
    best_alternative,
    power_law_ccdf,
    tail_grid,
)
from zipfstage.plotting.thinning import SortedSample
from zipfstage.records import ALTERNATIVE_LABELS, FitRecord

CCDF_LABEL = "P(X ≥ x)  (fraction of tokens)"


def ccdf_figure(sample: SortedSample, fit: FitRecord) -> Figure:
    """The CCDF on the left; legend and fit summary in a panel on the right, clear of the data."""
    with style.styled():
        fig = style.new_figure((9.2, 4.6), style.Margins(right=0.1, wspace=0.06))
        ax, side = fig.subplots(1, 2, width_ratios=[2.3, 1])
        side.axis("off")
        summary = draw_ccdf(ax, sample, fit)
        fig.suptitle(f"CCDF \u00b7 {fit.point} \u00b7 {fit.metric}", fontweight="bold")
        handles, labels = ax.get_legend_handles_labels()
        side.legend(handles, labels, loc="upper left", borderaxespad=0.0)
        side.text(
            0.0,
            0.64,
            summary,
            transform=side.transAxes,
            ha="left",
            va="top",
            fontsize=9.5,
            linespacing=1.45,
            bbox=style.NOTE_BOX,
        )
    return fig


def draw_ccdf(ax: Axes, sample: SortedSample, fit: FitRecord) -> str:
    """Draw data, fit and best alternative on `ax`; returns the text summarising the fit."""
    style.log_axes(ax)
    ax.set_xlabel(metric_label(fit.metric))
    ax.set_ylabel(CCDF_LABEL)
    if sample.empty:
        return "No data: no positive finite values."
    style.plot_data(ax, sample.values, sample.ccdf, sample.n)
    ax.set_ylim(bottom=0.5 / sample.n, top=1.6)
    if not fit.ok:
        return "No power-law fit drawn:\n" + wrap(fit.why_not, 34)
    assert fit.alpha is not None and fit.xmin is not None
    grid = tail_grid(fit.xmin, float(sample.values[0]))
    share = fit.tail_share
    ax.plot(
        grid,
        share * power_law_ccdf(grid, fit.alpha, fit.xmin),
        color=style.FIT_COLOR,
        lw=2.0,
        label=f"power law, \u03b1 = {fmt_fixed(fit.alpha)}",
    )
    alternative = best_alternative(fit)
    if alternative is not None:
        try:
            curve = share * alternative_ccdf(alternative.name, alternative.params, grid, fit.xmin)
        except (KeyError, ValueError, ZeroDivisionError):
            curve = None
        if curve is not None and np.any(curve > 0):
            label = ALTERNATIVE_LABELS.get(alternative.name, alternative.name)
            ax.plot(
                grid,
                np.where(curve > 0, curve, np.nan),
                color=style.ALT_COLOR,
                lw=1.6,
                ls="--",
                label=f"best alternative:\n{label}",
            )
    ax.axvline(
        fit.xmin,
        color=style.XMIN_COLOR,
        lw=1.4,
        ls=":",
        label=f"xmin = {fmt_number(fit.xmin)}",
    )
    return fit_summary(fit, alternative)

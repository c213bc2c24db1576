"""Bootstrap intervals for alpha that lie wholly above or below alpha: every figure draws them as
the interval they are, and the report says where one misses its estimate."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from zipfstage.compare.depth import place
from zipfstage.compare.figures import BINNED_KEY, AlphaPoint, alpha_by_depth_figure
from zipfstage.formatting import EXCLUDES_MARK, fmt_interval
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.diagnostics import diagnostics_figure
from zipfstage.plotting.thinning import sorted_sample
from zipfstage.records import FitRecord
from zipfstage.report.content import FitRow
from zipfstage.report.markdown import _table
from zipfstage.report.summary import summarize
from zipfstage.report.verdict import alternatives_verdict, clauset_verdict

ALPHA = 2.0
#: an interval wholly above alpha, and one wholly below
SIDES = {"above": (2.3, 2.6), "below": (1.5, 1.8)}


def _fit(point: str, interval: tuple[float, float]) -> FitRecord:
    return FitRecord(
        point=point,
        metric="rms",
        alpha=ALPHA,
        alpha_ci=interval,
        xmin=1.0,
        n_tail=400,
        n=1000,
        ks_distance=0.02,
        p_value=0.3,
        n_failed=0,
    )


def _segments(fig: Figure) -> list[tuple[float, float]]:
    """Vertical two-point lines on the first axes: (low, high) of each interval drawn."""
    found = []
    for line in fig.axes[0].get_lines():
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        if x.size == 2 and x[0] == x[1] and y[0] != y[1]:
            found.append((float(min(y)), float(max(y))))
    return found


@pytest.mark.parametrize("side", sorted(SIDES))
def test_alpha_by_depth_draws_an_interval_on_either_side_of_alpha(side: str) -> None:
    interval = SIDES[side]
    points = [
        AlphaPoint(place(name, 4), _fit(name, interval), "plausible")  # type: ignore[arg-type]
        for name in ("embed", "layer_1", "layer_3")
    ]
    fig = alpha_by_depth_figure("rms", [("run", points)])
    assert _segments(fig) == [interval] * 3
    low, high = fig.axes[0].get_ylim()
    assert low <= min(interval) and high >= max(interval)


@pytest.mark.parametrize("side", sorted(SIDES))
def test_ccdf_and_diagnostics_draw_a_one_sided_interval(side: str) -> None:
    interval = SIDES[side]
    rng = np.random.default_rng(0)
    values = 1.0 + rng.pareto(ALPHA - 1, 1000)
    fit = _fit("layer_1", interval)
    ccdf = ccdf_figure(sorted_sample(values), fit)
    texts = " ".join(t.get_text() for ax in ccdf.axes for t in ax.texts)
    assert fmt_interval(interval, ALPHA) in texts and EXCLUDES_MARK in texts
    draws = rng.normal(np.mean(interval), 0.05, 200)
    curves = {"bootstrap_alpha": draws, "bootstrap_xmin": np.full(200, 1.0)}
    diagnostics = diagnostics_figure(fit, curves)
    edges = [
        line.get_xdata()[0]
        for line in diagnostics.axes[2].get_lines()
        if line.get_linestyle() == ":" and len(line.get_xdata()) == 2
    ]
    assert sorted(edges) == list(interval)


def test_interval_text_marks_only_an_interval_that_misses_its_estimate() -> None:
    assert fmt_interval((1.9, 2.1), ALPHA) == "1.90\u20132.10"
    assert fmt_interval(SIDES["above"], ALPHA) == f"2.30\u20132.60 {EXCLUDES_MARK}"
    assert fmt_interval(SIDES["below"], ALPHA, sep="-") == f"1.50-1.80 {EXCLUDES_MARK}"
    assert fmt_interval(None, ALPHA) == "\u2014"
    assert _fit("embed", SIDES["below"]).ci_excludes_alpha
    assert not _fit("embed", (1.9, 2.1)).ci_excludes_alpha


def test_report_says_how_many_intervals_miss_their_estimate() -> None:
    fits = [_fit("embed", (1.9, 2.1)), _fit("layer_1", SIDES["above"]), _fit("layer_2", (1.8, 2.2))]
    texts = [finding.text for finding in summarize(fits, [], "max_abs")]
    said = [t for t in texts if "wholly to one side" in t]
    assert len(said) == 1 and said[0].startswith("1 of 3 bootstrap")
    assert "rms at layer_1" in said[0]
    assert not any("wholly" in f.text for f in summarize(fits[:1], [], "max_abs"))

    rows = [FitRow(0, f, clauset_verdict(f), alternatives_verdict(f)) for f in fits]
    table = "\n".join(_table(rows))
    assert table.count(EXCLUDES_MARK) == 1 and f"2.30-2.60 {EXCLUDES_MARK}" in table


def test_alpha_by_depth_marks_a_binned_alpha_only_where_the_grid_moves_alpha() -> None:
    """A bf16 run whose binned alpha differs by more than 2 sigma gets a dash at it, and the legend
    says what the dash is; one within 2 sigma, or a float32 run, gets none."""
    sigma = (ALPHA - 1.0) / np.sqrt(400)

    def point(name: str, binned: float | None) -> AlphaPoint:
        fit = FitRecord(point=name, metric="max_abs", alpha=ALPHA, alpha_binned=binned, xmin=1.0,
                        n_tail=400, n=1000, sigma=sigma)  # fmt: skip
        return AlphaPoint(place(name, 4), fit, "untested")  # type: ignore[arg-type]

    bf16 = [point("embed", ALPHA - 3 * sigma), point("layer_3", ALPHA - sigma)]
    float32 = [point("embed", None), point("layer_3", None)]
    fig = alpha_by_depth_figure("max_abs", [("bf16", bf16), ("float32", float32)])
    crosses = [
        float(np.asarray(line.get_ydata(), dtype=float)[0])
        for line in fig.axes[0].get_lines()
        if line.get_marker() == "_"
    ]
    assert crosses == [pytest.approx(ALPHA - 3 * sigma)]
    assert BINNED_KEY in [t.get_text() for t in fig.legends[0].get_texts()]
    plain = alpha_by_depth_figure("max_abs", [("float32", float32)])
    assert BINNED_KEY not in [t.get_text() for t in plain.legends[0].get_texts()]

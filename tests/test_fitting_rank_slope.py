"""The descriptive OLS rank-frequency slope against numpy, and what it means for a Pareto tail."""

from __future__ import annotations

import numpy as np

from zipfstage.fitting import fit_power_law
from zipfstage.fitting.rank_slope import rank_slope


def test_rank_slope_matches_numpy_polyfit() -> None:
    values = np.random.default_rng(0).lognormal(size=500)
    slope, intercept, r2 = rank_slope(values)
    ordered = np.sort(values)[::-1]
    log_rank, log_value = np.log10(np.arange(1, 501)), np.log10(ordered)
    ref_slope, ref_intercept = np.polyfit(log_rank, log_value, 1)
    assert slope is not None and intercept is not None and r2 is not None
    np.testing.assert_allclose([slope, intercept], [ref_slope, ref_intercept], rtol=1e-10)
    np.testing.assert_allclose(r2, np.corrcoef(log_rank, log_value)[0, 1] ** 2, rtol=1e-10)


def test_rank_slope_of_pareto_tail_is_minus_one_over_alpha_minus_one() -> None:
    alpha = 2.5
    values = np.random.default_rng(1).pareto(alpha - 1, size=20_000) + 1
    fit = fit_power_law(values)
    assert fit.slope is not None and fit.intercept is not None
    assert abs(fit.slope - (-1 / (alpha - 1))) < 0.08
    assert fit.to_record()["intercept"] == fit.intercept


def test_rank_slope_degenerate() -> None:
    assert rank_slope(np.array([1.0, 1.0, 1.0])) == (None, None, None)
    assert rank_slope(np.array([1.0, 2.0])) == (None, None, None)

"""Likelihood-ratio comparisons against `powerlaw.Fit.distribution_compare` on the same tail."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zipfstage.fitting import fit_power_law

powerlaw = pytest.importorskip("powerlaw")


def both(x: np.ndarray, name: str) -> tuple[float, float, float, float]:
    ours = fit_power_law(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(x, parameter_ranges={"alpha": [1, None]}, verbose=0)
        R, p = ref.distribution_compare("power_law", name)
    assert ours.xmin == ref.xmin
    return ours.comparisons[name].R, ours.comparisons[name].p, R, p


CASES = [
    ("exponential", "lognormal"),
    ("truncated_power_law", "lognormal"),
    ("lognormal", "lognormal"),
    ("exponential", "exponential"),
    ("stretched_exponential", "exponential"),
    ("truncated_power_law", "exponential"),
    ("exponential", "pareto"),
    ("truncated_power_law", "pareto"),
]


@pytest.mark.parametrize(("name", "data"), CASES)
def test_agrees_with_powerlaw_where_it_is_right(name: str, data: str) -> None:
    rng = np.random.default_rng(7)
    x = {
        "lognormal": rng.lognormal(0, 1, 2000),
        "exponential": rng.exponential(1, 2000),
        "pareto": rng.pareto(1.5, 2000) + 1,
    }[data]
    R, p, R_ref, p_ref = both(x, name)
    assert pytest.approx(R_ref, rel=0.01, abs=1e-3) == R
    assert np.sign(R) == np.sign(R_ref) or abs(R) < 1e-3
    assert (p < 0.1) == (p_ref < 0.1)


def test_alternatives_that_degenerate_to_a_power_law_give_no_evidence() -> None:
    # On a Pareto tail the lognormal and stretched exponential MLEs run off to the power-law limit;
    # powerlaw's optimiser stops early and reports R > 0, we reach the limit, R -> 0, p -> 1
    rng = np.random.default_rng(3)
    result = fit_power_law(rng.pareto(1.5, 3000) + 1)
    for name in ("lognormal", "stretched_exponential", "truncated_power_law"):
        assert abs(result.comparisons[name].R) < 0.05
        assert result.comparisons[name].p > 0.5
    assert result.comparisons["exponential"].R > 50 and result.comparisons["exponential"].p < 1e-3


def test_curved_tail_prefers_the_truncated_power_law() -> None:
    rng = np.random.default_rng(4)
    result = fit_power_law(rng.exponential(1, 5000), xmin=0.5)
    tpl = result.comparisons["truncated_power_law"]
    assert tpl.nested and tpl.R < 0 and tpl.p < 1e-6
    assert result.comparisons["exponential"].R < 0
    assert tpl.params["lambda"] == pytest.approx(1.0, rel=0.15)


def test_alternative_that_became_the_power_law_is_inconclusive() -> None:
    """A systematic but negligible difference (the optimiser stopped near the nesting edge) must
    not read as significant just because its variance is tiny."""
    from zipfstage.fitting.compare import loglikelihood_ratio

    rng = np.random.default_rng(0)
    ll_pl = rng.normal(-3, 1, size=5000)
    ll_alt = ll_pl - 1e-5 - 1e-6 * rng.random(5000)
    R, p = loglikelihood_ratio(ll_pl, ll_alt, nested=False)
    assert R > 0 and p == 1.0
    # a real difference still gets Vuong's p-value
    R, p = loglikelihood_ratio(ll_pl, ll_pl - 0.05 - 0.2 * rng.random(5000), nested=False)
    assert R > 0 and p < 1e-6


def test_consistent_small_advantage_over_many_observations_is_still_tested() -> None:
    from zipfstage.fitting.compare import loglikelihood_ratio

    rng = np.random.default_rng(1)
    ll_pl = rng.normal(-3, 1, size=50_000)
    ll_alt = ll_pl + 8e-4 + 1e-4 * rng.random(50_000)  # alternative better by ~0.0009 each
    R, p = loglikelihood_ratio(ll_pl, ll_alt, nested=False)
    assert R < -40 and p < 1e-6

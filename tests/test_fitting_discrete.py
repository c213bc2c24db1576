"""The discrete power law: Table 6.1 of Clauset, Shalizi & Newman (2009) on the full data sets,
agreement with `powerlaw`'s discrete Fit, and each piece against an independent reference."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
from scipy import optimize, special

from tests.shared_data import reference_data
from zipfstage.errors import ZipfstageError
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.discrete import sample
from zipfstage.fitting.discrete_kernels import log_zeta
from zipfstage.fitting.stage import use_discrete

powerlaw = pytest.importorskip("powerlaw")

#: Table 6.1: (xmin, alpha, alpha tolerance, n_tail, p)
TABLE = {"words": (7.0, 1.95, 0.01, 2958, 0.49), "terrorism": (12.0, 2.37, 0.05, 547, 0.68)}


def oracle(x: np.ndarray) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return powerlaw.Fit(
            x,
            discrete=True,
            estimate_discrete=False,
            parameter_ranges={"alpha": [1, None]},
            verbose=0,
        )


@pytest.mark.parametrize("name", sorted(TABLE))
def test_table_6_1_and_powerlaw_on_the_full_data(name: str) -> None:
    x = reference_data(name)
    xmin, alpha, tol, n_tail, _ = TABLE[name]
    fit = fit_power_law(x, discrete=True)
    assert fit.discrete and fit.to_record()["discrete"] is True
    assert (fit.xmin, fit.n_tail) == (xmin, n_tail)
    assert fit.alpha == pytest.approx(alpha, abs=tol)
    ref = oracle(x)
    assert (ref.xmin, ref.n_tail) == (fit.xmin, fit.n_tail)
    assert fit.alpha == pytest.approx(ref.alpha, abs=1e-4)  # powerlaw's optimiser stops at ~1e-5
    assert fit.ks_distance == pytest.approx(ref.D, abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "terrorism",
        pytest.param(
            "words",
            marks=pytest.mark.xfail(
                strict=True,
                reason="measured p = 0.67-0.68 (seeds 0, 1; 300-500 replicates) against the "
                "paper's 0.49: not yet explained (the paper's plpva differs in details)",
            ),
        ),
    ],
)
def test_table_6_1_p_values_with_500_replicates(name: str) -> None:
    fit = fit_power_law(reference_data(name), discrete=True, bootstrap=500, seed=0, compare=False)
    assert fit.n_failed == 0
    assert fit.p_value == pytest.approx(TABLE[name][4], abs=0.08)


@pytest.mark.parametrize("s", [1.01, 1.5, 1.95, 2.37, 3.0, 20.0, 69.0, 300.0])
def test_log_zeta_matches_mpmath(s: float) -> None:
    mpmath.mp.dps = 50
    for q in (1.0, 2.0, 7.0, 19.0, 21.0, 81.0, 1000.0, 1e6, 3.7):
        exact = float(mpmath.log(mpmath.zeta(s, q)))
        assert log_zeta(s, q) == pytest.approx(exact, rel=2e-12, abs=1e-12)


def test_mle_alpha_and_ks_match_direct_computation() -> None:
    x = reference_data("terrorism")
    fit = fit_power_law(x, discrete=True, compare=False)
    tail = x[x >= fit.xmin]

    def nll(a: float) -> float:
        return a * float(np.sum(np.log(tail))) + tail.size * math.log(special.zeta(a, fit.xmin))

    ref = optimize.minimize_scalar(
        nll, bounds=(1.01, 6.0), method="bounded", options={"xatol": 1e-10}
    )
    assert fit.alpha == pytest.approx(ref.x, abs=1e-7)
    u = np.unique(tail)
    below = np.searchsorted(tail, u, side="left") / tail.size
    model = 1.0 - special.zeta(fit.alpha, u) / special.zeta(fit.alpha, fit.xmin)
    assert fit.ks_distance == pytest.approx(
        float(np.max(np.abs(model - np.sort(below)))), abs=1e-12
    )


def test_sampler_draws_the_exact_law() -> None:
    draws = sample(np.random.default_rng(0), 400_000, 2.5, 3.0)
    assert draws.min() == 3.0 and np.all(draws == np.round(draws))
    for v in (3, 4, 5, 10, 40):
        expected = v**-2.5 / special.zeta(2.5, 3.0)
        se = math.sqrt(expected * (1 - expected) / draws.size)
        assert abs(np.mean(draws == v) - expected) < 5 * se


def test_synthetic_discrete_power_law_recovers_alpha_and_xmin() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[rng.integers(1, 5, 3000), sample(rng, 5000, 2.2, 5.0)]
    fit = fit_power_law(x, discrete=True)
    assert fit.alpha == pytest.approx(2.2, abs=0.05) and fit.xmin == pytest.approx(5.0, abs=2)
    assert all(c.converged and math.isfinite(c.R) for c in fit.comparisons.values())


@pytest.mark.slow  # powerlaw's truncated power law calls mpmath's lerchphi per step: ~40 s
def test_comparisons_agree_with_powerlaw_discrete() -> None:
    x = reference_data("terrorism")
    fit = fit_power_law(x, discrete=True)
    ref = oracle(x)
    for name in ("exponential", "truncated_power_law", "lognormal"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            R, p = ref.distribution_compare("power_law", name)
        assert pytest.approx(R, abs=0.01) == fit.comparisons[name].R, name
        assert fit.comparisons[name].p == pytest.approx(p, abs=0.01), name


def test_discrete_needs_integers_and_no_xmax() -> None:
    with pytest.raises(ZipfstageError, match="integer"):
        fit_power_law(np.linspace(1.5, 9.5, 50), discrete=True)
    with pytest.raises(ZipfstageError, match="xmax"):
        fit_power_law(np.arange(1.0, 50.0), discrete=True, xmax=40.0)


def test_auto_is_discrete_for_integers_off_the_bf16_grid() -> None:
    counts = np.arange(1.0, 200.0)
    assert use_discrete("auto", counts, on_grid=False)
    assert not use_discrete("auto", counts, on_grid=True)  # large bf16 values are integers too
    assert not use_discrete("auto", counts + 0.5, on_grid=False)
    assert use_discrete("yes", counts + 0.5, on_grid=False) and not use_discrete(
        "no", counts, False
    )

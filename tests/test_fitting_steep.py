"""A fit never breaks: steep, tiny, huge and near-degenerate tails are fitted with four finite,
converged comparisons, or refused with a reason from the closed list `NOT_OK_REASONS`."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from tests.shared_data import shared_dir
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.api import MIN_VALUES, NOT_OK_REASONS
from zipfstage.fitting.expint import log_expint
from zipfstage.fitting.newton import minimise
from zipfstage.records import ALTERNATIVES, FitRecord

STEEP = shared_dir() / "data" / "steep_entropy_tail.npy"


def assert_fitted_or_refused(x: np.ndarray) -> FitRecord:
    """ok with four finite converged comparisons, or a listed reason; never `failed` for data
    with enough values and two distinct ones."""
    fit = fit_power_law(x)
    clean = x[np.isfinite(x) & (x > 0)]
    if fit.status != "ok":
        assert any(
            status == fit.status and text in (fit.reason or "") for status, text in NOT_OK_REASONS
        ), (
            fit.status,
            fit.reason,
        )
        assert clean.size < MIN_VALUES or np.unique(clean).size < 2, fit.reason
        return fit
    assert set(fit.comparisons) == set(ALTERNATIVES)
    for name, comparison in fit.comparisons.items():
        assert comparison.R is not None and math.isfinite(comparison.R), name
        assert comparison.p is not None and 0.0 <= comparison.p <= 1.0, name
        assert comparison.converged, (name, fit.alpha, fit.n_tail)
    assert "comparison_not_converged" not in fit.flags
    return fit


def test_the_steep_entropy_tail_is_fitted() -> None:
    if not STEEP.exists():
        pytest.skip(f"repro file not present at {STEEP}")
    fit = assert_fitted_or_refused(np.load(STEEP))
    assert fit.ok and fit.alpha > 50  # alpha ~ 63: the truncated power law overflowed here


ALPHAS = np.geomspace(1.05, 500.0, 7)


@pytest.mark.parametrize("alpha", ALPHAS, ids=lambda a: f"alpha{a:.3g}")
def test_pareto_tails_of_any_steepness_and_size(alpha: float) -> None:
    for n in (10, 60, 400, 3000):
        for seed in range(2):
            rng = np.random.default_rng(seed)
            x = rng.pareto(alpha - 1.0, n) + 1.0
            fit = assert_fitted_or_refused(x)
            assert fit.ok
            # ties and few distinct values: float32, rounded to 3 decimals
            on_grid = np.asarray(np.minimum(x, 1e30), np.float32).astype(np.float64).round(3)
            assert_fitted_or_refused(on_grid)


@pytest.mark.parametrize("sigma", [1e-4, 1e-2, 0.3, 1.0, 3.0])
def test_lognormal_tails(sigma: float) -> None:
    for n in (10, 300, 3000):
        assert assert_fitted_or_refused(np.random.default_rng(1).lognormal(0, sigma, n)).ok


@pytest.mark.parametrize("n", [5, 10, 100, 1000])
def test_near_degenerate_tails(n: int) -> None:
    assert assert_fitted_or_refused(np.r_[np.full(n - 1, 3.0), 3.0000001]).ok
    assert assert_fitted_or_refused(np.r_[np.full(n // 2, 3.0), np.full(n - n // 2, 4.0)]).ok
    assert assert_fitted_or_refused(1.0 + np.random.default_rng(0).random(n) * 1e-9).ok


def test_what_cannot_be_fitted_says_a_listed_reason() -> None:
    for x in (np.array([1.0, 2.0, 3.0]), np.full(50, 2.0), np.array([np.nan, -1.0, 0.0])):
        assert not assert_fitted_or_refused(x).ok


def test_a_million_value_tail() -> None:
    x = np.random.default_rng(3).pareto(40.0, 1_000_000) + 1.0  # alpha 41, n_tail ~ 1e6
    fit = assert_fitted_or_refused(x)
    assert fit.alpha == pytest.approx(41.0, rel=0.05)


@pytest.mark.parametrize("p", [1.5, 69.0, 69.00003, 150.5, 171.0, 500.3, 2000.0])
def test_the_normaliser_is_finite_and_exact_for_steep_exponents(p: float) -> None:
    """log E_p(x) where Gamma(1 - p) alone overflows a float (p > ~171) or nearly does."""
    mpmath.mp.dps = 60
    for x in (1e-9, 1e-4, 0.3, 0.99, 5.0):

        def integrand(s: float, x: float = x) -> float:
            return s ** (-p) * mpmath.exp(-x * s)

        exact = mpmath.quad(integrand, [1, 1 + 1 / p, 2, mpmath.inf])
        assert log_expint(p, x) == pytest.approx(float(mpmath.log(exact)), rel=1e-11, abs=1e-11)


def test_minimiser_says_when_it_did_not_converge() -> None:
    def f(u: float, v: float) -> float:
        return (u - 3.0) ** 2 + (v - 2.0) ** 2

    def grad(u: float, v: float) -> tuple[float, float]:
        return 2.0 * (u - 3.0), 2.0 * (v - 2.0)

    done = minimise(f, grad, 0.0, 0.0)
    assert done.converged and done.u == pytest.approx(3.0) and done.v == pytest.approx(2.0)
    edge = minimise(lambda u, v: f(u, v + 5.0), lambda u, v: grad(u, v + 5.0), 0.0, 1.0)
    assert edge.converged and edge.v == 0.0  # the optimum lies beyond the edge: on it
    cut = minimise(
        lambda u, v: math.cosh(10 * u) + v,
        lambda u, v: (10 * math.sinh(10 * u), 1.0),
        5.0,
        0.0,
        max_iter=2,
    )
    assert not cut.converged and "max_iter" in cut.reason


@pytest.mark.parametrize("p", [-1000.0, -205.56, -50.0, -3.0, -0.3])
def test_the_normaliser_is_exact_for_negative_exponents(p: float) -> None:
    """A curved tail's truncated power law runs to alpha << 0 with a large lambda, where the
    continued fraction converges slowly or not at all (x near or below 1 - p)."""
    mpmath.mp.dps = 50
    for x in (1e-3, 0.5, 1.0, 1.5, 40.0, 218.0, 800.0):
        exact = float(mpmath.re(mpmath.log(mpmath.expint(p, x))))
        assert log_expint(p, x) == pytest.approx(exact, rel=1e-11, abs=1e-11)

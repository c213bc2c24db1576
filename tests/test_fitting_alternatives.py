"""The comparison fitters against independent references: the truncated power law's normaliser
against quadrature and mpmath, each alternative's optimum against a general-purpose optimiser on
the full (not sufficient-statistic) likelihood."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from zipfstage.fitting import compare as C
from zipfstage.fitting.expint import log_expint


def quad_log_norm(a: float, lam: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(
            lambda v: np.exp(-a * np.log1p(v) - lam * v), 0.0, np.inf, epsabs=0.0, epsrel=1e-12
        )
    return -lam + math.log(value)


A_GRID = [0.3, 0.99, 1.0, 1.00001, 1.5, 1.99995, 2.0, 2.00003, 2.5, 3.0, 4.2]
LAM_GRID = [1e-3, 0.01, 0.1, 0.5, 0.999, 1.0, 2.0, 10.0, 50.0]


@pytest.mark.parametrize("a", A_GRID)
def test_normaliser_matches_quadrature(a: float) -> None:
    for lam in LAM_GRID:
        assert log_expint(a, lam) == pytest.approx(quad_log_norm(a, lam), abs=1e-10)


def test_normaliser_matches_mpmath_where_quadrature_struggles() -> None:
    mpmath = pytest.importorskip("mpmath")
    for a in A_GRID:
        for lam in (1e-8, 1e-5, 300.0):
            ref = float(mpmath.log(mpmath.expint(a, lam)))
            assert log_expint(a, lam) == pytest.approx(ref, abs=1e-10)
    assert log_expint(2.5, 0.0) == pytest.approx(-math.log(1.5))
    assert log_expint(0.5, 0.0) == math.inf


def tail_of(x: np.ndarray, xmin: float) -> tuple[np.ndarray, np.ndarray]:
    y = np.sort(x[x >= xmin]) / xmin
    return y, np.log(y)


def test_lognormal_optimum_matches_a_general_optimiser() -> None:
    x = np.random.default_rng(0).lognormal(0.3, 0.8, 4000)
    y, log_y = tail_of(x, 1.0)
    ll, params, converged = C._lognormal(y, log_y, 1.0, 2.0)
    assert converged

    def nll(theta: np.ndarray) -> float:
        mu, s = theta[0], math.exp(theta[1])
        dist = stats.lognorm(s, scale=math.exp(mu))
        return -float(np.sum(dist.logpdf(y) - dist.logsf(1.0)))

    ref = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9})
    assert params["mu"] == pytest.approx(ref.x[0], abs=1e-5)
    assert params["sigma"] == pytest.approx(math.exp(ref.x[1]), rel=1e-5)
    assert -np.sum(ll) == pytest.approx(ref.fun, rel=1e-9)


def test_stretched_exponential_optimum_matches_scipy_weibull() -> None:
    x = np.random.default_rng(1).weibull(0.6, 4000) * 2.0
    xmin = 0.5
    y, log_y = tail_of(x, xmin)
    ll, params, converged = C._stretched_exponential(y, log_y, xmin, 2.0)
    assert converged
    # left-truncated Weibull: logpdf - logsf(xmin), shape beta, scale 1 / lambda
    tail = y * xmin

    def nll(theta: np.ndarray) -> float:
        dist = stats.weibull_min(math.exp(theta[1]), scale=math.exp(-theta[0]))
        return -float(np.sum(dist.logpdf(tail) - dist.logsf(xmin)))

    ref = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9})
    assert params["beta"] == pytest.approx(math.exp(ref.x[1]), rel=1e-5)
    assert params["lambda"] == pytest.approx(math.exp(ref.x[0]), rel=1e-5)
    assert -np.sum(ll) == pytest.approx(ref.fun, rel=1e-9)


def test_truncated_power_law_optimum_matches_quadrature_likelihood() -> None:
    x = np.random.default_rng(2).gamma(0.6, 3.0, 4000)
    xmin = 0.2
    y, log_y = tail_of(x, xmin)
    ll, params, converged = C._truncated_power_law(y, log_y, xmin, 1.5)
    assert converged
    s_log, s_y = float(np.sum(log_y)), float(np.sum(y))

    def nll(theta: np.ndarray) -> float:
        a, lam = theta[0], math.exp(theta[1])
        return a * s_log + lam * s_y + y.size * quad_log_norm(a, lam)

    # a generic start, independent of the code under test: alpha 1.5, lambda = 1 / mean(y)
    start = [1.5, -math.log(float(np.mean(y)))]
    options = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}
    ref = optimize.minimize(nll, start, method="Nelder-Mead", options=options)
    assert ref.success
    assert params["alpha"] == pytest.approx(ref.x[0], abs=1e-5)
    assert params["lambda"] * xmin == pytest.approx(math.exp(ref.x[1]), rel=1e-4)
    assert -np.sum(ll) == pytest.approx(ref.fun + y.size * math.log(xmin), rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_alternatives_containing_the_power_law_never_fit_worse_than_it(seed: int) -> None:
    """The lognormal (1 / sigma^2 -> 0), stretched exponential (beta -> 0) and truncated power law
    (lambda = 0) contain the power law as a limit, so R <= 0 at their optimum (an optimiser that
    stops short of the edge reports R > 0); on the edge itself R = 0 and p = 1."""
    x = np.random.default_rng(seed).pareto(1.5, 20_000) + 1
    out = C.compare_alternatives(np.sort(x), 1.0, 1.0 + x.size / np.sum(np.log(x)))
    for name in ("lognormal", "stretched_exponential", "truncated_power_law"):
        assert out[name].R <= 1e-9
        if abs(out[name].R) < 1e-9:
            assert out[name].p == 1.0

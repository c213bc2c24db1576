"""Power law vs alternatives on the fitted tail: log-likelihood ratio R and its p-value.

Each alternative is fitted by maximum likelihood on the tail x >= xmin, normalised on [xmin, inf),
and parameterised exactly as `powerlaw` does (so its pdf/ccdf formulas apply to our parameters):
lognormal (mu, sigma), exponential (lambda), stretched_exponential (lambda, beta:
p ~ (lambda x)^(beta-1) exp(-(lambda x)^beta)), truncated_power_law (alpha, lambda:
p ~ x^-alpha exp(-lambda x)).

R = sum of pointwise log-likelihood differences (power law minus alternative; R > 0 favours the
power law). Non-nested alternatives get Vuong's normalised test, p = erfc(|R| / sqrt(2 n var)); the
truncated power law, which nests the power law, gets the likelihood-ratio chi-square test with one
degree of freedom. Fits work on y = x / xmin so every optimisation is well scaled, and most use
sufficient statistics; the truncated power law's normaliser is one `quad` per likelihood evaluation
rather than `powerlaw`'s mpmath call per value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import integrate, optimize, special, stats

from zipfstage.records import Comparison

LogLik = tuple[np.ndarray, dict[str, float]]


def compare_alternatives(tail: np.ndarray, xmin: float, alpha: float) -> dict[str, Comparison]:
    """Fit each alternative on `tail` (values >= xmin) and test it against the power law."""
    y = np.asarray(tail, dtype=np.float64) / xmin
    log_y = np.log(y)
    ll_pl = np.log(alpha - 1.0) - np.log(xmin) - alpha * log_y
    fitters: dict[str, Callable[[np.ndarray, np.ndarray, float, float], LogLik]] = {
        "lognormal": _lognormal,
        "exponential": _exponential,
        "stretched_exponential": _stretched_exponential,
        "truncated_power_law": _truncated_power_law,
    }
    out: dict[str, Comparison] = {}
    for name, fitter in fitters.items():
        ll_alt, params = fitter(y, log_y, xmin, alpha)
        nested = name == "truncated_power_law"
        R, p = loglikelihood_ratio(ll_pl, ll_alt, nested=nested)
        out[name] = Comparison(R=R, p=p, params=params, nested=nested)
    return out


#: Two models whose log-densities differ by less than this at every observation are the same model
#: on these data (an alternative that ran to the edge where it becomes the power law, such as a
#: lognormal with mu -> -inf). Vuong's statistic is then noise over near-zero variance.
INDISTINGUISHABLE = 1e-3


def loglikelihood_ratio(ll1: np.ndarray, ll2: np.ndarray, nested: bool) -> tuple[float, float]:
    """R = sum(ll1 - ll2) and its p-value (Vuong, or chi-square with 1 dof when nested).

    p is 1 (no evidence either way) when the models agree to INDISTINGUISHABLE at every
    observation and in total (|R| below INDISTINGUISHABLE * sqrt(n), the scale of Vuong's noise):
    a small but consistent advantage over many observations still gets its test.
    """
    diff = ll1 - ll2
    R = float(np.sum(diff))
    if diff.size == 0:
        return R, 1.0
    tiny_everywhere = float(np.max(np.abs(diff))) < INDISTINGUISHABLE
    if tiny_everywhere and abs(R) < INDISTINGUISHABLE * np.sqrt(diff.size):
        return R, 1.0
    if nested:
        return R, float(stats.chi2.sf(2.0 * abs(R), 1))
    sd = float(np.std(diff))
    if sd == 0.0:
        return R, 1.0
    return R, float(special.erfc(abs(R) / (np.sqrt(2.0 * diff.size) * sd)))


def _exponential(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    lam_y = 1.0 / (np.mean(y) - 1.0)
    ll = np.log(lam_y) - lam_y * (y - 1.0) - np.log(xmin)
    return ll, {"lambda": float(lam_y / xmin)}


def _lognormal(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    n = y.size
    s1, s2 = float(np.sum(log_y)), float(np.sum(log_y**2))

    def nll(theta: np.ndarray) -> float:
        mu, log_s = theta
        s = np.exp(log_s)
        quad_sum = (s2 - 2 * mu * s1 + n * mu * mu) / (2 * s * s)
        return float(n * log_s + quad_sum + n * special.log_ndtr(mu / s))

    start = np.array([np.mean(log_y), np.log(max(np.std(log_y), 1e-3))])
    # near a power law the MLE runs off to mu -> -inf, sigma -> inf, where R -> 0
    res = optimize.minimize(
        nll, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 800}
    )
    mu_y, s = float(res.x[0]), float(np.exp(res.x[1]))
    ll = (
        -log_y
        - np.log(xmin)
        - np.log(s)
        - 0.5 * np.log(2 * np.pi)
        - (log_y - mu_y) ** 2 / (2 * s * s)
        - special.log_ndtr(mu_y / s)
    )
    return ll, {"mu": mu_y + float(np.log(xmin)), "sigma": s}


def _stretched_exponential(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    """Fitted as (g, beta) with g = beta (lambda xmin)^beta, where the log-likelihood
    log g - log y + beta log y - g expm1(beta log y) / beta tends smoothly to the power law with
    alpha = 1 + g as beta -> 0 (the way it degenerates on power-law tails)."""

    def ll_of(theta: np.ndarray) -> np.ndarray:
        g, beta = np.exp(theta)
        return np.log(g) + (beta - 1.0) * log_y - g * np.expm1(beta * log_y) / beta - np.log(xmin)

    def nll(theta: np.ndarray) -> float:
        value = -float(np.sum(ll_of(theta)))
        return value if np.isfinite(value) else 1e300

    best = None
    for beta0 in (1.0, 0.3):
        lam0 = 1.0 / np.mean(y)
        start = np.log([beta0 * lam0**beta0, beta0])
        res = optimize.minimize(
            nll,
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 2000},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    g, beta = np.exp(best.x)
    with np.errstate(over="ignore"):
        lam_y = float(np.exp(np.log(g / beta) / beta))
    return ll_of(best.x), {"lambda": lam_y / xmin, "beta": float(beta)}


def _tpl_log_norm(a: float, lam: float) -> float:
    """log of integral_1^inf s^-a exp(-lam s) ds = exp(-lam) integral_0^inf (1+v)^-a e^(-lam v)."""
    if lam <= 0.0:
        return float(-np.log(a - 1.0)) if a > 1.0 else np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(
            lambda v: np.exp(-a * np.log1p(v) - lam * v),
            0.0,
            np.inf,
            epsabs=0.0,
            epsrel=1e-10,
            limit=200,
        )
    return float(-lam + np.log(value))


def _truncated_power_law(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    n = y.size
    s_log, s_y = float(np.sum(log_y)), float(np.sum(y))

    def nll(theta: np.ndarray) -> float:
        a, lam = float(theta[0]), float(np.exp(theta[1]))
        value = a * s_log + lam * s_y + n * _tpl_log_norm(a, lam)
        return value if np.isfinite(value) else 1e300

    best = None
    for lam0 in (1e-3 / np.mean(y), 1.0 / np.mean(y)):
        res = optimize.minimize(
            nll,
            np.array([alpha, np.log(lam0)]),
            method="Nelder-Mead",
            options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 400},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    a, lam_y = float(best.x[0]), float(np.exp(best.x[1]))
    ll = -a * log_y - lam_y * y - _tpl_log_norm(a, lam_y) - np.log(xmin)
    pl_ll = np.log(alpha - 1.0) - alpha * log_y - np.log(xmin)
    if np.sum(ll) < np.sum(pl_ll):  # it nests the power law: never worse than lambda -> 0
        return pl_ll, {"alpha": alpha, "lambda": 0.0}
    return ll, {"alpha": a, "lambda": lam_y / xmin}

"""Discrete power law vs alternatives on an integer tail, as `powerlaw` (discrete=True) defines
them, so its numbers are the reference:

- exponential: p(x) = (1 - e^-lambda) e^(-lambda (x - xmin)), the geometric law; its MLE is
  closed-form, lambda = log(1 + 1 / mean(x - xmin));
- truncated power law: p(x) = x^-alpha e^(-lambda x) / sum_(k >= xmin) k^-alpha e^(-lambda k),
  exactly normalised (`powerlaw`'s Lerch-phi normaliser), the sum taken directly over 2,048 terms
  and by the Euler-Maclaurin integral (`expint`) beyond;
- lognormal and stretched exponential: `powerlaw`'s "round" discretisation, p(x) = (S(x - 1/2) -
  S(x + 1/2)) / S(xmin - 1/2) for the continuous survival function S.

Each is fitted by maximum likelihood with `newton.minimise` (its convergence status goes into the
comparison) on the tail's unique values and their counts, gradients by central differences; R and
p as in `compare` (Vuong's test; chi-square with one degree of freedom for the nested truncated
power law, which is never worse than the power law at lambda = 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from zipfstage.fitting.compare import loglikelihood_ratio
from zipfstage.fitting.discrete_kernels import log_zeta
from zipfstage.fitting.expint import log_expint
from zipfstage.fitting.newton import minimise
from zipfstage.records import Comparison

#: terms of the truncated power law's normaliser summed directly before the integral takes over
_DIRECT = 2048

Fitted = tuple[np.ndarray, dict[str, float], bool]


def compare_discrete(tail: np.ndarray, xmin: float, alpha: float) -> dict[str, Comparison]:
    """Fit each discrete alternative on `tail` (integers >= xmin) and test it against the law."""
    x = np.asarray(tail, dtype=np.float64)
    ll_pl = -alpha * np.log(x) - log_zeta(alpha, xmin)
    fitters: dict[str, Callable[[np.ndarray, float, float], Fitted]] = {
        "lognormal": _lognormal,
        "exponential": _exponential,
        "stretched_exponential": _stretched_exponential,
        "truncated_power_law": _truncated_power_law,
    }
    out: dict[str, Comparison] = {}
    for name, fitter in fitters.items():
        ll_alt, params, converged = fitter(x, xmin, alpha)
        nested = name == "truncated_power_law"
        if nested and not np.sum(ll_alt) > np.sum(ll_pl):
            ll_alt, params = ll_pl, {"alpha": alpha, "lambda": 0.0}
        R, p = loglikelihood_ratio(ll_pl, ll_alt, nested=nested)
        out[name] = Comparison(R=R, p=p, params=params, nested=nested, converged=converged)
    return out


def _fd_gradient(
    f: Callable[[float, float], float],
) -> Callable[[float, float], tuple[float, float]]:
    """Central differences (one-sided at the edge v = 0) of a smooth mean log-likelihood."""

    def grad(u: float, v: float) -> tuple[float, float]:
        hu = 1e-6 * (1.0 + abs(u))
        hv = 1e-6 * (1.0 + abs(v))
        gu = (f(u + hu, v) - f(u - hu, v)) / (2.0 * hu)
        gv = (f(u, v + hv) - f(u, v - hv)) / (2.0 * hv) if v > hv else (f(u, v + hv) - f(u, v)) / hv
        return gu, gv

    return grad


def _grouped(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(x, return_counts=True)
    return values, counts / x.size


def _exponential(x: np.ndarray, xmin: float, alpha: float) -> Fitted:
    lam = math.log1p(1.0 / max(float(np.mean(x)) - xmin, 1e-300))
    ll = math.log(-math.expm1(-lam)) - lam * (x - xmin)
    return ll, {"lambda": lam}, True  # closed form


def _log_survival_difference(log_s_lo: np.ndarray, log_s_hi: np.ndarray) -> np.ndarray:
    """log(S(lo) - S(hi)) from log S at both ends (S(lo) >= S(hi))."""
    with np.errstate(divide="ignore"):
        return log_s_lo + np.log(-np.expm1(log_s_hi - log_s_lo))


def _lognormal_loglik(values: np.ndarray, xmin: float, c: float, w: float) -> np.ndarray:
    """Rounded lognormal in natural parameters c = mu / sigma^2, w = 1 / sigma^2 (w >= 0): at
    w = 0 it is the rounded power law S(t) ~ t^c, the limit its fit runs to on power-law tails."""
    edge = math.log(xmin - 0.5)
    lo, hi = np.log(values - 0.5), np.log(values + 0.5)
    if w <= 0.0:
        if c >= 0.0:
            return np.full(values.shape, -np.inf)
        with np.errstate(divide="ignore"):
            return c * (lo - edge) + np.log(-np.expm1(c * (hi - lo)))
    root = math.sqrt(w)

    def log_sf(log_t: np.ndarray | float) -> np.ndarray:
        return np.asarray(special.log_ndtr(-(np.asarray(log_t) * w - c) / root))

    def log_cdf(log_t: np.ndarray) -> np.ndarray:
        return np.asarray(special.log_ndtr((log_t * w - c) / root))

    upper = lo * w - c > 0.0  # above the median: difference the survivals, below: the CDFs
    with np.errstate(divide="ignore"):
        mass = np.where(
            upper,
            _log_survival_difference(log_sf(lo), log_sf(hi)),
            _log_survival_difference(log_cdf(hi), log_cdf(lo)),
        )
    return mass - log_sf(edge)


def _lognormal(x: np.ndarray, xmin: float, alpha: float) -> Fitted:
    values, weights = _grouped(x)

    def f(c: float, w: float) -> float:
        value = -float(np.dot(weights, _lognormal_loglik(values, xmin, c, w)))
        return value if math.isfinite(value) else math.inf

    logs = np.log(x)
    var = max(float(np.var(logs)), 1e-6)
    starts = [(float(np.mean(logs)) / var, 1.0 / var), (1.0 - alpha, 0.0)]
    found = minimise(f, _fd_gradient(f), *min(starts, key=lambda p: f(*p)))
    ll = _lognormal_loglik(x, xmin, found.u, found.v)
    if found.v <= 0.0:
        return ll, {"mu": -math.inf, "sigma": math.inf}, found.converged
    return ll, {"mu": found.u / found.v, "sigma": 1.0 / math.sqrt(found.v)}, found.converged


def _stretched_loglik(values: np.ndarray, xmin: float, g: float, beta: float) -> np.ndarray:
    """Rounded stretched exponential, S(t) / S(xmin - 1/2) = exp(-(g / beta) expm1(beta l)) with
    l = log(t / (xmin - 1/2)) and g = beta (lambda (xmin - 1/2))^beta: smooth as beta -> 0, where
    it becomes the rounded power law S ~ t^-g."""
    edge = xmin - 0.5
    lo, hi = np.log((values - 0.5) / edge), np.log((values + 0.5) / edge)
    if beta <= 0.0:
        h_lo, h_hi = lo, hi
    else:
        h_lo, h_hi = np.expm1(beta * lo) / beta, np.expm1(beta * hi) / beta
    with np.errstate(divide="ignore"):
        return -g * h_lo + np.log(-np.expm1(-g * (h_hi - h_lo)))


def _stretched_exponential(x: np.ndarray, xmin: float, alpha: float) -> Fitted:
    values, weights = _grouped(x)

    def f(g: float, beta: float) -> float:
        if g <= 0.0:
            return math.inf
        with np.errstate(over="ignore", invalid="ignore"):
            value = -float(np.dot(weights, _stretched_loglik(values, xmin, g, beta)))
        return value if math.isfinite(value) else math.inf

    found = minimise(
        f, _fd_gradient(f), *min([(alpha - 1.0, 1e-3), (1.0, 1.0)], key=lambda p: f(*p))
    )
    ll = _stretched_loglik(x, xmin, found.u, found.v)
    g, beta = found.u, found.v
    with np.errstate(over="ignore"):
        lam = float(np.exp(np.log(g / beta) / beta)) / (xmin - 0.5) if beta > 0 else math.inf
    return ll, {"lambda": lam, "beta": beta}, found.converged


def tpl_log_norm(alpha: float, lam: float, xmin: float) -> float:
    """log sum_(k >= xmin) k^-alpha e^(-lambda k): 2,048 terms, then the Euler-Maclaurin tail
    (integral k0^(1-alpha) E_alpha(lambda k0), plus f(k0) / 2 - f'(k0) / 12)."""
    if lam <= 0.0:
        return log_zeta(alpha, xmin)
    k = xmin + np.arange(_DIRECT, dtype=np.float64)
    terms = -alpha * np.log(k) - lam * k
    k0 = xmin + _DIRECT
    log_f0 = -alpha * math.log(k0) - lam * k0
    integral = (1.0 - alpha) * math.log(k0) + log_expint(alpha, lam * k0)
    tail = np.logaddexp(integral, log_f0 + math.log(0.5 + (alpha / k0 + lam) / 12.0))
    top = max(float(terms.max()), float(tail))
    return top + math.log(float(np.sum(np.exp(terms - top))) + math.exp(tail - top))


def _truncated_power_law(x: np.ndarray, xmin: float, alpha: float) -> Fitted:
    m_log, m_x = float(np.mean(np.log(x))), float(np.mean(x))
    scale = 1.0 / m_x  # lambda = t * scale keeps both coordinates of order one

    def f(a: float, t: float) -> float:
        value = a * m_log + t * scale * m_x + tpl_log_norm(a, t * scale, xmin)
        return value if math.isfinite(value) else math.inf

    found = minimise(f, _fd_gradient(f), alpha, 1e-3)
    lam = found.v * scale
    ll = -found.u * np.log(x) - lam * x - tpl_log_norm(found.u, lam, xmin)
    return ll, {"alpha": found.u, "lambda": lam}, found.converged

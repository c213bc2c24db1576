"""Power law vs alternatives on the fitted tail: log-likelihood ratio R and its p-value.

Each alternative is fitted by maximum likelihood on the tail x >= xmin, normalised on [xmin, inf),
and parameterised exactly as `powerlaw` does (so its pdf/ccdf formulas apply to our parameters):
lognormal (mu, sigma), exponential (lambda), stretched_exponential (lambda, beta:
p ~ (lambda x)^(beta-1) exp(-(lambda x)^beta)), truncated_power_law (alpha, lambda:
p ~ x^-alpha exp(-lambda x)).

R = sum of pointwise log-likelihood differences (power law minus alternative; R > 0 favours the
power law). Non-nested alternatives get Vuong's normalised test, p = erfc(|R| / sqrt(2 n var)); the
truncated power law, which nests the power law, gets the likelihood-ratio chi-square test with one
degree of freedom. Fits work on y = x / xmin so every optimisation is well scaled. The cost is a
few vectorised passes over the tail, so the comparisons cost about what the xmin scan does:
the lognormal and truncated power law optimise on sufficient statistics alone (the latter's
normaliser is the exponential integral E_alpha(lambda) by series or continued fraction, see
`expint`, rather than `powerlaw`'s mpmath call per value), both with analytic gradients, and the
stretched exponential's scale has a closed form given beta, leaving a 1-D Newton search in beta
with one pass over the tail per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

from zipfstage.fitting.expint import log_expint
from zipfstage.fitting.lognormal import fit_natural, lognormal_loglik
from zipfstage.fitting.newton import GTOL, minimise
from zipfstage.records import Comparison

#: an alternative's pointwise log-likelihood, its parameters, and whether its optimiser converged
LogLik = tuple[np.ndarray, dict[str, float], bool]


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
        ll_alt, params, converged = fitter(y, log_y, xmin, alpha)
        nested = name == "truncated_power_law"
        R, p = loglikelihood_ratio(ll_pl, ll_alt, nested=nested)
        out[name] = Comparison(R=R, p=p, params=params, nested=nested, converged=converged)
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
        return R, float(special.chdtrc(1.0, 2.0 * abs(R)))  # chi2.sf without its overhead
    sd = float(np.std(diff))
    if sd == 0.0:
        return R, 1.0
    return R, float(special.erfc(abs(R) / (np.sqrt(2.0 * diff.size) * sd)))


def _exponential(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    lam_y = 1.0 / (np.mean(y) - 1.0)
    ll = np.log(lam_y) - lam_y * (y - 1.0) - np.log(xmin)
    return ll, {"lambda": float(lam_y / xmin)}, True  # closed form


def _lognormal(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    """Convex in its natural parameters, on two means (see `lognormal`); near a power law the
    optimum is the edge where it is the power law, and R -> 0."""
    m1 = float(np.mean(log_y))
    m2 = float(np.dot(log_y, log_y)) / log_y.size
    found = fit_natural(m1, m2)
    ll, params = lognormal_loglik(log_y, xmin, found.u, found.v)
    return ll, params, found.converged


def _at_least_the_limit(
    ll: np.ndarray,
    log_y: np.ndarray,
    xmin: float,
    alpha: float,
    params: dict[str, float],
    converged: bool,
) -> LogLik:
    """The lognormal (mu -> -inf, mu / sigma^2 fixed) and the stretched exponential (beta -> 0)
    contain the power law as a limit, so their maximum likelihood is never below the fitted power
    law's: an optimum found below it is the optimiser stopping short of that edge, and the edge
    itself (R = 0, p = 1) is returned, as it is for the truncated power law at lambda = 0."""
    pl_ll = np.log(alpha - 1.0) - alpha * log_y - np.log(xmin)
    if np.sum(ll) < np.sum(pl_ll):
        return pl_ll, params, converged
    return ll, params, converged


#: exp of more than this overflows a float
_LOG_MAX = 709.0

#: the stretched exponential's beta is searched in [BETA_LOW, the largest without overflow]
BETA_LOW = 1e-9


def _stretched_exponential(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    """Fitted as (g, beta) with g = beta (lambda xmin)^beta, where the log-likelihood
    log g - log y + beta log y - g expm1(beta log y) / beta tends smoothly to the power law with
    alpha = 1 + g as beta -> 0 (the way it degenerates on power-law tails). Given beta the best
    g is n beta / sum(expm1(beta log y)); the profile in beta is minimised by Newton's method."""
    n = y.size
    beta, converged = _stretched_beta(log_y)
    em1 = np.expm1(beta * log_y)
    g = n * beta / float(np.sum(em1))
    ll = em1
    ll *= -g / beta
    ll += (beta - 1.0) * log_y
    ll += math.log(g) - math.log(xmin)
    with np.errstate(over="ignore"):
        lam_y = float(np.exp(np.log(g / beta) / beta))
    params = {"lambda": lam_y / xmin, "beta": beta}
    return _at_least_the_limit(ll, log_y, xmin, alpha, params, converged)


def _stretched_beta(log_y: np.ndarray) -> tuple[float, bool]:
    """argmin over beta of F(beta) = log sum expm1(beta l) - log beta - beta mean(l), by a
    bracketed Newton iteration in u = log beta on F'(u) = 0 (one pass over the tail per step),
    and whether it converged: F'(u) below GTOL at the end, or the power-law edge beta -> 0 with F
    rising from it."""
    s1 = float(np.sum(log_y))
    s2 = float(np.dot(log_y, log_y))
    mean = s1 / log_y.size
    top = float(np.max(log_y)) if log_y.size else 0.0
    lo, hi = math.log(BETA_LOW), math.log(600.0 / max(top, 1e-300))
    log_y2 = log_y * log_y

    def slope_curvature(u: float) -> tuple[float, float]:
        b = math.exp(u)
        em1 = np.expm1(b * log_y)
        e0 = float(np.sum(em1))
        r1 = (float(np.dot(log_y, em1)) + s1) / e0
        r2 = (float(np.dot(log_y2, em1)) + s2) / e0
        return b * r1 - 1.0 - b * mean, b * r1 + b * b * (r2 - r1 * r1) - b * mean

    # F rises from beta = 0 (slope s2 / 2 s1 - mean there) through 0.3 and 1: the power-law edge
    rises_at_zero = s2 / (2.0 * s1) - mean >= 0.0 if s1 > 0 else True
    if (
        rises_at_zero
        and hi > 0.0
        and slope_curvature(math.log(0.3))[0] > 0.0
        and slope_curvature(0.0)[0] > 0.0
    ):
        return BETA_LOW, True
    top_u = hi
    u = min(0.0, hi - 1.0)
    for _ in range(100):
        grad, curv = slope_curvature(u)
        if grad > 0.0:
            hi = u
        else:
            lo = u
        step = -grad / curv if curv > 0.0 else (-1.0 if grad > 0.0 else 1.0)
        new = u + step
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - u) < 1e-12 or hi - lo < 1e-12:
            u = new
            break
        u = new
    u = min(max(u, math.log(BETA_LOW)), top_u)
    grad = slope_curvature(u)[0]
    at_edge = u <= math.log(BETA_LOW) and grad >= 0.0
    converged = math.isfinite(grad) and (abs(grad) <= GTOL or at_edge)
    return math.exp(u), converged


def _tpl_log_norm(a: float, lam: float) -> float:
    """log of integral_1^inf s^-a exp(-lam s) ds = log E_a(lam)."""
    return log_expint(a, lam)


def _truncated_power_law(y: np.ndarray, log_y: np.ndarray, xmin: float, alpha: float) -> LogLik:
    """p(y) ~ y^-a exp(-lam y) is an exponential family in (a, lam) with sufficient statistics
    (log y, y): the mean negative log-likelihood a mean(log y) + lam mean(y) + log E_a(lam) is
    convex, and Newton's method on the two means finds its one optimum (lam >= 0; lam = 0 is the
    power law). d/dlam log E_a = -E_(a-1)/E_a; d/da by a central difference (E is exact to
    ~1e-13)."""
    m_log, m_y = float(np.mean(log_y)), float(np.mean(y))
    scale = 1.0 / m_y  # lam = t * scale keeps both coordinates of order one

    def f(a: float, t: float) -> float:
        value = a * m_log + t * scale * m_y + log_expint(a, t * scale)
        return value if math.isfinite(value) else math.inf

    def grad(a: float, t: float) -> tuple[float, float]:
        lam = t * scale
        h = 1e-6 * max(1.0, abs(a))
        d_a = (log_expint(a + h, lam) - log_expint(a - h, lam)) / (2 * h)
        log_mean_y = log_expint(a - 1.0, lam) - log_expint(a, lam)
        if not log_mean_y < _LOG_MAX:  # lam = 0, a <= 2: infinite mean, slope -inf at the edge
            return m_log + d_a, -math.inf
        return m_log + d_a, (m_y - math.exp(log_mean_y)) * scale

    # in (s, t) with s = a + lam the slope of log p at y = 1: near y = 1 (steep tails) only
    # a + lam is identified to first order, and the valley along it is then axis-aligned
    def f_s(s_: float, t: float) -> float:
        return f(s_ - t * scale, t)

    def grad_s(s_: float, t: float) -> tuple[float, float]:
        g_a, g_t = grad(s_ - t * scale, t)
        return g_a, g_t - g_a * scale

    start = min([(alpha, 1e-3), (max(alpha - 1.0, 0.5), 1.0)], key=lambda p: f(*p))
    found = minimise(f_s, grad_s, start[0] + start[1] * scale, start[1])
    a, lam_y = found.u - found.v * scale, found.v * scale
    pl_ll = np.log(alpha - 1.0) - alpha * log_y - np.log(xmin)
    if lam_y <= 0.0:
        return pl_ll, {"alpha": alpha, "lambda": 0.0}, found.converged
    ll = -a * log_y - lam_y * y - (_tpl_log_norm(a, lam_y) + math.log(xmin))
    if not np.sum(ll) > np.sum(pl_ll):  # it nests the power law: never worse than lambda -> 0
        return pl_ll, {"alpha": alpha, "lambda": 0.0}, found.converged
    return ll, {"alpha": a, "lambda": lam_y / xmin}, found.converged

"""Maximum-likelihood lognormal on the tail y = x / xmin >= 1, in its natural parameters.

With c = mu / sigma^2 and w = 1 / sigma^2 the truncated lognormal is an exponential family in the
sufficient statistics (log y, log^2 y): log p(y) = -(1 - c) log y - w log^2 y / 2 - A(c, w), and
the mean negative log-likelihood f = (1 - c) m1 + w m2 / 2 + A(c, w) is convex in (c, w). Its edge
w = 0 (mu -> -inf, sigma -> inf at fixed mu / sigma^2) is the power law with alpha = 1 - c, which is
where the fit goes on power-law tails. So a projected Newton iteration (`newton`) on (c, w >= 0),
a few microseconds a step on the two means alone, finds the one optimum, edge included; for
z = mu / sigma < 0 the normaliser is written through `erfcx` so that it stays exact as w -> 0.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import special

from zipfstage.fitting.newton import Minimum, minimise

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)


def log_partition(c: float, w: float) -> float:
    """A(c, w) = log of integral_0^inf exp(c l - w l^2 / 2) dl (inf where it diverges)."""
    if w <= 0.0:
        return -math.log(-c) if c < 0.0 else math.inf
    z = c / math.sqrt(w)
    if z < 0.0:
        t = -z
        return -math.log(-c) + math.log(t * _SQRT_HALF_PI * float(special.erfcx(t / math.sqrt(2))))
    return c * c / (2.0 * w) - 0.5 * math.log(w) + _log_ndtr(z) + _HALF_LOG_2PI


def _log_ndtr(z: float) -> float:
    return math.log(0.5 * math.erfc(-z / math.sqrt(2.0)))


def _gradient(c: float, w: float, m1: float, m2: float) -> tuple[float, float]:
    """(df/dc, df/dw) from the moments of (l, l^2) under the model: E[l] and E[l^2] / 2."""
    if w <= 0.0:
        return -m1 - 1.0 / c, 0.5 * m2 - 1.0 / (c * c)
    s = 1.0 / math.sqrt(w)
    z = c * s
    if z < 0.0:
        # E[l] = s d and E[l^2] = s^2 (1 - t d) for t = -z, d = inverse Mills ratio - t:
        # both cancel catastrophically as w -> 0 (t -> inf) unless d comes from its expansion
        t = -z
        d, q = _mills_excess(t)
        return s * d - m1, 0.5 * (m2 - s * s * q)
    mills = math.exp(-0.5 * z * z - _HALF_LOG_2PI - _log_ndtr(z))
    mean = c / w + mills * s  # E[l] of a normal(mu, sigma) truncated to l >= 0
    second = c * c / (w * w) + 1.0 / w + c / w * mills * s  # E[l^2]
    return mean - m1, 0.5 * (m2 - second)


#: above this t the asymptotic series of the inverse Mills ratio is exact to double precision
_ASYMPTOTIC_T = 40.0
#: lambda(t) = t + 1/t - 2/t^3 + 10/t^5 - ...: coefficients of 1/t^(2k+1)
_MILLS_SERIES = (1.0, -2.0, 10.0, -74.0, 706.0, -8162.0, 110410.0)


def _mills_excess(t: float) -> tuple[float, float]:
    """d = lambda(t) - t and 1 - t d for the inverse Mills ratio lambda(t) = phi(t) / (1 - Phi(t)),
    t >= 0, without cancellation for large t."""
    if t < _ASYMPTOTIC_T:
        d = 1.0 / (_SQRT_HALF_PI * float(special.erfcx(t / math.sqrt(2)))) - t
        return d, 1.0 - t * d
    x = 1.0 / (t * t)
    d = sum(a * x**k for k, a in enumerate(_MILLS_SERIES)) / t
    # 1 - t d = -(sum over k >= 1 of a_k x^k)
    q = -sum(a * x**k for k, a in enumerate(_MILLS_SERIES) if k > 0)
    return d, q


def fit_natural(m1: float, m2: float) -> Minimum:
    """argmin over (c, w >= 0) of (1 - c) m1 + w m2 / 2 + A(c, w), for m1 = mean(log y) > 0;
    `u`, `v` of the result are c, w.

    Solved for l / m1 (whose mean is 1) and mapped back: on a steep tail log y is of order
    1 / alpha, and in the raw coordinates w's natural scale is alpha^2, which stalls the steps."""
    found = _fit_scaled(m2 / (m1 * m1))
    return replace(found, u=found.u / m1, v=found.v / (m1 * m1))


def _fit_scaled(m2: float) -> Minimum:
    """`fit_natural` for mean(l) = 1 and mean(l^2) = m2."""
    m1 = 1.0

    def f(c: float, w: float) -> float:
        return (1.0 - c) * m1 + 0.5 * w * m2 + log_partition(c, w)

    def grad(c: float, w: float) -> tuple[float, float]:
        return _gradient(c, w, m1, m2)

    var = max(m2 - m1 * m1, 1e-12)
    c, w = -1.0 / m1, 0.0  # the power law, or the moment start if that is better
    if f(m1 / var, 1.0 / var) < f(c, w):
        c, w = m1 / var, 1.0 / var
    return minimise(f, grad, c, w)


def lognormal_loglik(
    log_y: np.ndarray, xmin: float, c: float, w: float
) -> tuple[np.ndarray, dict[str, float]]:
    """Pointwise log-likelihood on x = xmin y and the parameters as `powerlaw` names them."""
    ll = log_y * log_y
    ll *= -0.5 * w
    ll -= (1.0 - c) * log_y
    ll -= log_partition(c, w) + math.log(xmin)
    if w <= 0.0:
        return ll, {"mu": -math.inf, "sigma": math.inf}
    return ll, {"mu": c / w + math.log(xmin), "sigma": 1.0 / math.sqrt(w)}

"""log E_p(x) = log of integral_1^inf s^-p exp(-x s) ds, the truncated power law's normaliser.

E_p(x) = x^(p-1) Gamma(1-p, x): the generalised exponential integral of real order. For x >= 1 it
is Legendre's continued fraction (evaluated by Lentz's method); below, the series
E_p(x) = x^(p-1) Gamma(1-p) - sum_k (-x)^k / (k! (1-p+k)), whose pole pair at integer p = m is
combined analytically when p is within 1e-4 of m; for p <= 0 and x >= 1 (a curved tail whose
truncated-power-law fit has a negative exponent) scipy's regularised incomplete gamma. Plain
`math` on scalars: a likelihood needs one value per step, and a Python scalar call costs
microseconds where `quad` costs a millisecond.
"""

from __future__ import annotations

import math

from scipy import special

#: terms below this share of the running sum end the series
_TINY = 1e-17
#: |p - m| below this uses the combined pole pair
_NEAR_INTEGER = 1e-4
_EULER = 0.5772156649015329
_ZETA3 = 1.2020569031595942
#: exp of more than this overflows a float
_LOG_MAX = 709.0


def log_expint(p: float, x: float) -> float:
    """log E_p(x) for x >= 0 (inf where the integral diverges: x = 0 and p <= 1)."""
    if x <= 0.0:
        return -math.log(p - 1.0) if p > 1.0 else math.inf
    if p <= 0.0:
        # a = 1 - p >= 1: the regularised upper incomplete gamma (scipy) is exact, in log space,
        # where the continued fraction converges slowly or not at all (x near or below a)
        q = float(special.gammaincc(1.0 - p, x))
        if q > 1e-280:
            return (p - 1.0) * math.log(x) + float(special.gammaln(1.0 - p)) + math.log(q)
        return _continued_fraction(p, x)
    if x >= 1.0 and x + p > 0.5:
        return _continued_fraction(p, x)
    value = _series(p, x)
    return math.log(value) if value > 0.0 else math.inf


def _continued_fraction(p: float, x: float) -> float:
    b = x + p
    c = 1e300
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (p - 1.0 + i)
        b += 2.0
        d = 1.0 / (an * d + b)
        c = b + an / c
        delta = c * d
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.log(h) - x


def _series(p: float, x: float) -> float:
    m = round(p)
    eps = p - m
    near = m >= 1 and abs(eps) < _NEAR_INTEGER
    total = 0.0
    term = 1.0  # (-x)^k / k!
    for k in range(400):
        if not (near and k == m - 1):
            add = term / (1.0 - p + k)
            total += add
            if k > x and abs(add) < _TINY * abs(total):
                break
        term *= -x / (k + 1)
    if near:
        return _pole_pair(m, eps, x) - total
    return _gamma_term(p, x) - total


def _gamma_term(p: float, x: float) -> float:
    """x^(p-1) Gamma(1-p) in log space: for a steep tail (p ~ 70 and more) Gamma(1-p) alone
    overflows a float while the product underflows to nothing."""
    exponent = (p - 1.0) * math.log(x) + math.lgamma(1.0 - p)
    if exponent > _LOG_MAX:
        return math.inf
    return _gamma_sign(1.0 - p) * math.exp(exponent)


def _gamma_sign(z: float) -> float:
    """Sign of Gamma(z): positive for z > 0, alternating between the poles below."""
    if z > 0.0:
        return 1.0
    return -1.0 if math.floor(z) % 2 else 1.0


def _pole_pair(m: int, eps: float, x: float) -> float:
    """x^(p-1) Gamma(1-p) + (-x)^(m-1) / ((m-1)! eps) at p = m + eps, finite as eps -> 0."""
    harmonic = sum(1.0 / k for k in range(1, m))
    psi0 = -_EULER + harmonic
    psi1 = math.pi**2 / 6.0 - sum(1.0 / k**2 for k in range(1, m))
    psi2 = -2.0 * _ZETA3 + 2.0 * sum(1.0 / k**3 for k in range(1, m))
    # dh = h(eps) - h(0) for h = eps log x + log(pi eps / sin(pi eps)) - lgamma(m + eps)
    slope = math.log(x) + math.pi**2 * eps / 6.0 - psi0 - eps * psi1 / 2.0 - eps * eps * psi2 / 6.0
    dh = eps * slope
    ratio = math.expm1(dh) / dh if dh != 0.0 else 1.0
    # x^(m-1) / (m-1)! in log space: (m-1)! is no float beyond m = 171
    power = math.exp((m - 1) * math.log(x) - math.lgamma(m))
    return (-1.0) ** m * power * slope * ratio

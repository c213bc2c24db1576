"""Compiled kernels of the discrete fit: the Hurwitz zeta, each candidate's MLE alpha, KS distances.

log zeta(s, q) = -s log q + log(sum over m = q .. T-1 of (m/q)^-s + scaled tail at T), with T the
first point where the Euler-Maclaurin expansion of `hurwitz` is exact to double precision
(T >= 20 and T >= 4 s): a few terms for the usual alpha of 1.5-3, and scaled so that a steep tail
whose zeta underflows a float keeps its logarithm. numba (`cache=True`, no threads), as
`xmin_scan`: one discrete scan then costs ~1 ms per thousand candidate-value pairs instead of
scipy's microsecond per zeta.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: B_2k / (2k)! for k = 1..5: the Euler-Maclaurin coefficients
_B = (1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0, -1.0 / 1209600.0, 1.0 / 47900160.0)
_B1, _B2, _B3, _B4, _B5 = _B


@njit(cache=True, nogil=True)
def log_expansion(s: float, q: float) -> float:
    """log zeta(s, q) by Euler-Maclaurin: exact to double precision for q >= 20, q >= 4 s."""
    inv2 = 1.0 / (q * q)
    bracket = 1.0 + 0.5 * (s - 1.0) / q
    rising = s
    power = inv2
    for k, b in enumerate((_B1, _B2, _B3, _B4, _B5)):
        bracket += b * (s - 1.0) * rising * power
        rising *= (s + 2 * k + 1) * (s + 2 * k + 2)
        power *= inv2
    return (1.0 - s) * math.log(q) - math.log(s - 1.0) + math.log(bracket)


@njit(cache=True, nogil=True)
def log_zeta(s: float, q: float) -> float:
    """log zeta(s, q) for s > 1, q > 0 (inf for s <= 1)."""
    if s <= 1.0:
        return np.inf
    start = max(20.0, 4.0 * s)
    if q >= start:
        return log_expansion(s, q)
    log_q = math.log(q)
    total = 0.0
    m = q
    while m < start:
        total += math.exp(-s * (math.log(m) - log_q))
        m += 1.0
    tail = log_expansion(s, m) + s * log_q
    return -s * log_q + math.log(total + math.exp(tail))


@njit(cache=True, nogil=True)
def mle_alpha(mean_log: float, xmin: float) -> float:
    """The root of mean_log + d/dalpha log zeta(alpha, xmin): safeguarded Newton on a bracket
    (the log-likelihood is concave in alpha), derivatives by central differences."""
    lo = 1.0 + 1e-6
    hi = 2.0 * (1.0 + 1.0 / max(mean_log - math.log(xmin - 0.5), 1e-300)) + 2.0
    hi = min(hi, 1e12)
    for _ in range(60):
        if _slope(hi, mean_log, xmin)[0] > 0.0:
            break
        hi *= 2.0
    a = min(max(1.0 + 1.0 / max(mean_log - math.log(xmin - 0.5), 1e-300), lo), hi)
    for _ in range(200):
        g, curv = _slope(a, mean_log, xmin)
        if g > 0.0:
            hi = a
        else:
            lo = a
        new = a - g / curv if curv > 0.0 else 0.5 * (lo + hi)
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - a) <= 1e-13 * a or hi - lo <= 1e-13 * a:
            return new
        a = new
    return a


@njit(cache=True, nogil=True)
def _slope(a: float, mean_log: float, xmin: float) -> tuple[float, float]:
    h = 1e-4 * min(a - 1.0, 1.0)
    lm = log_zeta(a - h, xmin)
    l0 = log_zeta(a, xmin)
    lp = log_zeta(a + h, xmin)
    return mean_log + (lp - lm) / (2.0 * h), (lp - 2.0 * l0 + lm) / (h * h)


@njit(cache=True, nogil=True)
def mle_alphas(mean_log: np.ndarray, xmin: np.ndarray) -> np.ndarray:
    out = np.empty(mean_log.shape[0])
    for i in range(mean_log.shape[0]):
        out[i] = mle_alpha(mean_log[i], xmin[i])
    return out


@njit(cache=True, nogil=True)
def grid_alphas(
    mle: np.ndarray, mean_log: np.ndarray, xmin: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """The alpha on the sorted `grid` of highest likelihood for each candidate: one of the two
    grid values either side of its MLE, since the log-likelihood is concave in alpha (an MLE off
    the grid's ends takes the nearer end, as Clauset's grid search does). NaN stays NaN."""
    out = np.empty(mle.shape[0])
    last = grid.shape[0] - 1
    for i in range(mle.shape[0]):
        if not math.isfinite(mle[i]):
            out[i] = mle[i]
            continue
        j = np.searchsorted(grid, mle[i])
        lo = grid[max(j - 1, 0)]
        hi = grid[min(j, last)]
        loglik_lo = -lo * mean_log[i] - log_zeta(lo, xmin[i])
        loglik_hi = -hi * mean_log[i] - log_zeta(hi, xmin[i])
        out[i] = hi if loglik_hi > loglik_lo else lo
    return out


@njit(cache=True, nogil=True)
def ks_one(
    u: np.ndarray, first: np.ndarray, n: int, c: int, alpha: float, sup_rule: bool, bound: float
) -> tuple[float, float, bool]:
    """powerlaw's KS distance (model P(X < u) against the share of the tail below u, at each
    unique u) and the two-sided supremum (adding P(X <= u) against the share at or below u) of
    candidate c, and whether they are exact: the sweep stops once the distance xmin is chosen by
    exceeds `bound` (the candidate cannot win). Below T the model CDF is a running sum of the
    pmf; above, 1 - zeta ratios."""
    lz0 = log_zeta(alpha, u[c])
    k = first[c]
    inv_tail = 1.0 / (n - k)
    start = max(20.0, 4.0 * alpha)
    below = 0.0
    sup = 0.0
    cdf = 0.0  # P(X < m) for the next integer m
    m = u[c]
    for j in range(c, u.shape[0]):
        x = u[j]
        if x < start:
            while m < x:
                cdf += math.exp(-alpha * math.log(m) - lz0)
                m += 1.0
            before = cdf
            after = cdf + math.exp(-alpha * math.log(x) - lz0)
        else:
            before = -math.expm1(log_zeta(alpha, x) - lz0)
            after = -math.expm1(log_zeta(alpha, x + 1.0) - lz0)
        d = abs(before - (first[j] - k) * inv_tail)
        below = max(below, d)
        top = first[j + 1] if j + 1 < first.shape[0] else n
        sup = max(sup, d, abs(after - (top - k) * inv_tail))
        if (sup if sup_rule else below) > bound:
            return below, sup, False
    return below, sup, True


@njit(cache=True, nogil=True)
def ks_all(
    u: np.ndarray,
    first: np.ndarray,
    n: int,
    todo: np.ndarray,
    alphas: np.ndarray,
    sup_rule: bool,
    exact: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KS distances of the candidates in `todo`, by branch and bound unless `exact`: 33 evenly
    spread candidates first set the bound, then each sweep stops once it exceeds the best
    distance so far (those hold lower bounds, `proven` False); the best is always exact."""
    below = np.full(alphas.shape[0], np.inf)
    sup = np.full(alphas.shape[0], np.inf)
    proven = np.zeros(alphas.shape[0], dtype=np.bool_)
    best = np.inf
    stride = max(todo.shape[0] // 32, 1)
    for rnd in range(2):
        for i in range(todo.shape[0]):
            if (i % stride == 0) != (rnd == 0):
                continue
            c = todo[i]
            bound = np.inf if exact else best
            below[c], sup[c], proven[c] = ks_one(u, first, n, c, alphas[c], sup_rule, bound)
            d = sup[c] if sup_rule else below[c]
            if proven[c] and d < best:
                best = d
    return below, sup, proven


@njit(cache=True, nogil=True)
def log_zetas(s: float, q: np.ndarray) -> np.ndarray:
    """log zeta(s, q_i) for each q_i."""
    out = np.empty(q.shape[0])
    for i in range(q.shape[0]):
        out[i] = log_zeta(s, q[i])
    return out

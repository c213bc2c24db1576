"""Continuous power-law fit by the Clauset-Shalizi-Newman method, exact and fast.

For every candidate xmin (each unique value but the largest, as `powerlaw.Fit` chooses them) the MLE
alpha = 1 + n_tail / sum(log(x / xmin)) comes from suffix sums of log x, all candidates at once;
the KS distances come from the branch-and-bound kernel in `xmin_scan`. With `xmax` the tail is a
power law truncated at xmax and alpha solves its likelihood equation (`powerlaw` instead keeps the
untruncated estimate; see the docs of `fit_power_law`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import elementwise

from zipfstage.fitting.prepared import Prepared
from zipfstage.fitting.xmin_scan import ks_one, ks_scan, suffix_sums, two_sided
from zipfstage.records import ScanCurves

#: which KS distance chooses xmin: powerlaw's (the empirical CDF just below each value) or the
#: two-sided supremum
KsRule = Literal["powerlaw", "sup"]


@dataclass(frozen=True)
class TailFit:
    """The chosen xmin and its alpha: what the bootstrap needs, nothing more."""

    alpha: float
    xmin: float
    ks: float
    k: int  # index of the first tail value in the sorted data
    n_tail: int
    n_valid: int
    scan: ScanCurves | None
    at_last_candidate: bool = False  # the smallest tail allowed: the scan hit its edge
    ks_sup: float = float("nan")  # two-sided KS supremum at this xmin
    rule: KsRule = "powerlaw"  # the distance xmin was chosen by

    def distance(self) -> float:
        """The distance xmin was chosen by (what the bootstrap compares)."""
        return self.ks_sup if self.rule == "sup" else self.ks


def candidate_betas(
    prep: Prepared, n_cand: int, xmax: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """alpha - 1 for candidates 0..n_cand-1, and the CDF normaliser 1 - (xmax/xmin)^-beta."""
    x = prep.x
    n = prep.n
    k = prep.first[:n_cand]
    n_tail = (n - k).astype(np.float64)
    log_u = np.log(prep.unique[:n_cand])
    mean_log = (suffix_sums(np.log(x), k) - n_tail * log_u) / n_tail
    if xmax is None:
        return 1.0 / mean_log, np.ones(n_cand)
    log_r = np.log(xmax) - log_u
    beta = truncated_beta(mean_log, log_r)
    return beta, -np.expm1(-beta * log_r)


def truncated_beta(mean_log: np.ndarray, log_r: np.ndarray) -> np.ndarray:
    """MLE of alpha - 1 for a power law on [xmin, xmax]: 1/b - log r / (r^b - 1) = mean log(x/xmin).

    With z = b log r this is q(z) = 1/z - 1/expm1(z) = mean_log / log r, q falling from 1 to 0.
    """
    target = np.clip(mean_log / log_r, 1e-12, 1 - 1e-12)

    def q(z: np.ndarray, t: np.ndarray) -> np.ndarray:
        small = np.abs(z) < 1e-6
        safe = np.where(small, 1.0, z)
        exact = 1.0 / safe - 1.0 / np.expm1(safe)
        return np.where(small, 0.5 - z / 12.0, exact) - t

    res = elementwise.find_root(
        q, (np.full_like(target, -700.0), np.full_like(target, 700.0)), args=(target,)
    )
    return np.asarray(res.x) / log_r


def scan_tail(
    prep: Prepared,
    *,
    xmax: float | None = None,
    min_tail: int | None = None,
    alpha_range: tuple[float | None, float | None] = (1.0, None),
    exact_scan: bool = False,
    keep_scan: bool = False,
    ks: KsRule = "powerlaw",
) -> TailFit | None:
    """Choose xmin by minimum KS distance over all candidates; None if no candidate is allowed.
    `ks="sup"` minimises the two-sided supremum instead of powerlaw's distance."""
    n = prep.n
    n_cand = prep.unique.shape[0] - 1
    if n_cand < 1:
        return None
    betas, norms = candidate_betas(prep, n_cand, xmax)
    alphas = betas + 1.0
    valid = np.isfinite(alphas) & allowed(alphas, alpha_range)
    if min_tail:
        valid &= (n - prep.first[:n_cand]) >= min_tail
    log_u = np.log(prep.unique)
    if ks == "sup":
        points, counts = two_sided(log_u, prep.first, n)
        found = ks_scan(points, counts, n, n_cand, betas, norms, valid, exact_scan, 2)
    else:
        found = ks_scan(log_u, prep.first, n, n_cand, betas, norms, valid, exact_scan)
    dist, proven, winner = found
    if winner < 0:
        return None
    k = int(prep.first[winner])
    xmin = float(prep.unique[winner])
    alpha, d, d_sup = tail_alpha_ks(prep, winner, k, xmin, xmax)
    scan = None
    if keep_scan:
        scan = ScanCurves(prep.unique[:n_cand].copy(), dist, alphas, proven)
    last = int(np.flatnonzero(valid)[-1])
    return TailFit(alpha, xmin, d, k, n - k, int(valid.sum()), scan, winner == last, d_sup, ks)


def fixed_tail(
    prep: Prepared, xmin: float, xmax: float | None = None, ks: KsRule = "powerlaw"
) -> TailFit | None:
    """The tail above a given xmin; None if fewer than two distinct values lie above it."""
    start = int(np.searchsorted(prep.unique, xmin, side="left"))
    if prep.unique.shape[0] - start < 2:
        return None
    k = int(prep.first[start])
    alpha, d, d_sup = tail_alpha_ks(prep, start, k, float(xmin), xmax)
    return TailFit(alpha, float(xmin), d, k, prep.n - k, 1, None, False, d_sup, ks)


def tail_alpha_ks(
    prep: Prepared, start: int, k: int, xmin: float, xmax: float | None
) -> tuple[float, float, float]:
    """Alpha, powerlaw's KS distance and the two-sided supremum of one tail, computed directly
    (no suffix-sum cancellation)."""
    tail = prep.x[k:]
    mean_log = float(np.mean(np.log(tail / xmin)))
    if xmax is None:
        beta = 1.0 / mean_log
        norm = 1.0
    else:
        log_r = float(np.log(xmax / xmin))
        beta = float(truncated_beta(np.array([mean_log]), np.array([log_r]))[0])
        norm = float(-np.expm1(-beta * log_r))
    log_u = np.log(prep.unique)
    log_xmin = float(np.log(xmin))
    d, _, _ = ks_one(log_u, prep.first, start, k, prep.n, log_xmin, beta, norm, np.inf)
    points, counts = two_sided(log_u, prep.first, prep.n)
    d_sup, _, _ = ks_one(points, counts, 2 * start, k, prep.n, log_xmin, beta, norm, np.inf)
    return beta + 1.0, float(d), float(d_sup)


def allowed(alphas: np.ndarray, alpha_range: tuple[float | None, float | None]) -> np.ndarray:
    """Strictly inside the allowed range (as `powerlaw.Distribution.in_range` tests)."""
    lo, hi = alpha_range
    ok = np.ones(alphas.shape, dtype=bool)
    if lo is not None:
        ok &= alphas > lo
    if hi is not None:
        ok &= alphas < hi
    return ok

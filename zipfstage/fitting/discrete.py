"""Discrete power law p(x) = x^-alpha / zeta(alpha, xmin) on the integers x >= xmin (Clauset,
Shalizi & Newman 2009, section 3 and appendix B), for integer data such as word counts.

Every candidate xmin (each unique value but the largest, as `powerlaw.Fit` takes them) gets its
maximum-likelihood alpha, the root of mean(log x) = -d/dalpha log zeta(alpha, xmin), by a
safeguarded Newton iteration per candidate; means of log x come from suffix sums, as in the
continuous scan. The KS distance is between the tail's empirical CDF and the discrete model CDF
P(X < u) = 1 - zeta(alpha, u) / zeta(alpha, xmin) at each unique value u (`powerlaw`'s
convention; `ks="sup"` adds the CDF just after each jump, P(X <= u), which gives the two-sided
supremum). Both are compiled loops over the Hurwitz zeta of `discrete_kernels`.
"""

from __future__ import annotations

import numpy as np

from zipfstage.errors import ZipfstageError
from zipfstage.fitting.continuous import KsRule, TailFit, allowed
from zipfstage.fitting.discrete_kernels import (
    grid_alphas,
    ks_all,
    log_zeta,
    log_zetas,
    mle_alpha,
    mle_alphas,
)
from zipfstage.fitting.prepared import Prepared
from zipfstage.fitting.xmin_scan import suffix_sums
from zipfstage.records import ScanCurves

#: the alpha grid of Clauset's plfit and plpva for integer data (1.50, 1.51, ..., 3.50), with
#: which Table 6.1 of Clauset, Shalizi & Newman (2009) was computed
CLAUSET_ALPHA_GRID = np.round(np.arange(150, 351) / 100.0, 2)

#: integers drawn by table lookup in `sample`; draws beyond use Clauset's approximation (D.6)
_TABLE = 1 << 14


def is_integer_valued(x: np.ndarray) -> bool:
    """Every finite positive value an integer (the data `discrete="auto"` fits discretely)."""
    values = np.asarray(x, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and bool(np.all(values == np.round(values)))


def candidate_alphas(
    prep: Prepared, n_cand: int, alpha_grid: np.ndarray | None = None
) -> np.ndarray:
    """MLE alpha of candidates 0..n_cand-1 (candidate c has xmin = unique value c), or the most
    likely alpha on `alpha_grid` (sorted) when one is given."""
    k = prep.first[:n_cand]
    n_tail = (prep.n - k).astype(np.float64)
    mean_log = suffix_sums(np.log(prep.x), k) / n_tail
    xmins = prep.unique[:n_cand]
    alphas = np.asarray(mle_alphas(mean_log, xmins))
    if alpha_grid is None:
        return alphas
    return np.asarray(grid_alphas(alphas, mean_log, xmins, alpha_grid))


def checked_grid(alpha_grid: np.ndarray | None) -> np.ndarray | None:
    """`alpha_grid` as sorted float64 values, refused unless every value is finite and above 1."""
    if alpha_grid is None:
        return None
    grid = np.sort(np.asarray(alpha_grid, dtype=np.float64).ravel())
    if grid.size == 0 or not np.all(np.isfinite(grid)) or grid[0] <= 1.0:
        raise ZipfstageError("alpha_grid needs at least one finite alpha, every one above 1")
    return grid


def candidate_ks(
    prep: Prepared, alphas: np.ndarray, todo: np.ndarray, ks: KsRule, exact: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """powerlaw's KS distance and the two-sided supremum of the candidates in `todo` (indices;
    inf elsewhere), and which are exact (`exact` False prunes: see `ks_all`)."""
    todo = np.asarray(todo, np.int64)
    return ks_all(prep.unique, prep.first, prep.n, todo, alphas, ks == "sup", exact)


def grid_label(grid: np.ndarray | None) -> str | None:
    """How `FitRecord.alpha_grid` names a grid: "1.5:0.01:3.5" when evenly spaced (Clauset's),
    else its size and ends."""
    if grid is None:
        return None
    if grid.size == 1:
        return f"{grid[0]:g}"
    if grid.size > 2 and np.allclose(np.diff(grid), grid[1] - grid[0], rtol=1e-6, atol=1e-9):
        return f"{grid[0]:g}:{grid[1] - grid[0]:.6g}:{grid[-1]:g}"
    return f"{grid.size} values, {grid[0]:g}-{grid[-1]:g}"


def scan_discrete(
    prep: Prepared,
    *,
    min_tail: int | None = None,
    alpha_range: tuple[float | None, float | None] = (1.0, None),
    keep_scan: bool = False,
    exact_scan: bool = False,
    ks: KsRule = "powerlaw",
    alpha_grid: np.ndarray | None = None,
) -> TailFit | None:
    """Choose xmin by the smallest KS distance over all candidates; None if none is allowed.
    Pruned candidates hold lower bounds in the scan curves unless `exact_scan`. `alpha_grid`
    (sorted, from `checked_grid`) replaces each MLE by the grid's most likely alpha."""
    n = prep.n
    n_cand = prep.unique.shape[0] - 1
    if n_cand < 1:
        return None
    alphas = candidate_alphas(prep, n_cand, alpha_grid)
    valid = np.isfinite(alphas) & allowed(alphas, alpha_range)
    if min_tail:
        valid &= (n - prep.first[:n_cand]) >= min_tail
    if not valid.any():
        return None
    below, sup, proven = candidate_ks(prep, alphas, np.flatnonzero(valid), ks, exact_scan)
    dist = sup if ks == "sup" else below
    winner = int(np.argmin(np.where(valid & proven, dist, np.inf)))
    k = int(prep.first[winner])
    scan = None
    if keep_scan:
        scan = ScanCurves(prep.unique[:n_cand].copy(), dist, alphas, proven)
    last = int(np.flatnonzero(valid)[-1])
    return TailFit(
        float(alphas[winner]),
        float(prep.unique[winner]),
        float(below[winner]),
        k,
        n - k,
        int(valid.sum()),
        scan,
        winner == last,
        float(sup[winner]),
        ks,
    )


def fixed_discrete(
    prep: Prepared, xmin: float, ks: KsRule = "powerlaw", alpha_grid: np.ndarray | None = None
) -> TailFit | None:
    """The discrete tail above a given xmin; None if fewer than two distinct values lie above."""
    start = int(np.searchsorted(prep.unique, xmin, side="left"))
    if prep.unique.shape[0] - start < 2:
        return None
    k = int(prep.first[start])
    mean_log = float(np.mean(np.log(prep.x[k:])))
    alphas = np.full(prep.unique.shape[0] - 1, np.nan)
    alphas[start] = mle_alpha(mean_log, float(xmin))
    if alpha_grid is not None:
        one = alphas[start : start + 1]
        alphas[start] = grid_alphas(one, np.array([mean_log]), np.array([xmin]), alpha_grid)[0]
    if prep.unique[start] != xmin:  # xmin below the first tail value: the tail starts at xmin
        return _tail_below_data(prep, start, k, float(xmin), float(alphas[start]), ks)
    below, sup, _ = candidate_ks(prep, alphas, np.array([start]), ks)
    return TailFit(
        float(alphas[start]), float(xmin), float(below[start]), k, prep.n - k, 1, None,
        False, float(sup[start]), ks,
    )  # fmt: skip


def _tail_below_data(
    prep: Prepared, start: int, k: int, xmin: float, alpha: float, ks: KsRule
) -> TailFit:
    """A given xmin that is no data value: the KS distances against P(X < u) from that xmin."""
    u = prep.unique[start:]
    first = np.append(prep.first[start:], prep.n) - k
    n_tail = prep.n - k
    lz0 = log_zeta(alpha, xmin)
    model = -np.expm1(log_zetas(alpha, u) - lz0)
    after = -np.expm1(log_zetas(alpha, u + 1.0) - lz0)
    below = float(np.max(np.abs(model - first[:-1] / n_tail)))
    sup = max(below, float(np.max(np.abs(after - first[1:] / n_tail))))
    return TailFit(alpha, xmin, below, k, n_tail, 1, None, False, sup, ks)


def sample(rng: np.random.Generator, size: int, alpha: float, xmin: float) -> np.ndarray:
    """Exact draws from the discrete power law on x >= xmin by inverting its CDF on a table of
    2^14 integers; the rare draws beyond it by Clauset's approximation (his eq. D.6), which is
    exact to O(x^-2) there."""
    x = xmin + np.arange(_TABLE + 1, dtype=np.float64)
    survival = np.exp(log_zetas(alpha, x) - log_zeta(alpha, xmin))  # P(X >= x)
    r = rng.random(size)
    # X = the largest table x with P(X >= x) >= r: survival falls, so search its negation
    idx = np.searchsorted(-survival, -r, side="right") - 1
    out = x[np.clip(idx, 0, _TABLE)]
    beyond = idx >= _TABLE
    if beyond.any():
        approx = np.floor((xmin - 0.5) * r[beyond] ** (-1.0 / (alpha - 1.0)) + 0.5)
        out[beyond] = np.maximum(approx, x[-1])
    return out

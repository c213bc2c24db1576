"""`fit_power_law`: one call from a notebook or a pool worker; never raises on bad data."""

from __future__ import annotations

from typing import Any

import numpy as np

from zipfstage.errors import ZipfstageError
from zipfstage.fitting.binned import binned_alpha
from zipfstage.fitting.bootstrap import BootstrapResult, groups_in_sorted_order, storage_grid
from zipfstage.fitting.bootstrap import bootstrap as run_bootstrap
from zipfstage.fitting.compare import compare_alternatives
from zipfstage.fitting.continuous import KsRule, TailFit, fixed_tail, scan_tail
from zipfstage.fitting.discrete import (
    checked_grid,
    fixed_discrete,
    grid_label,
    is_integer_valued,
    scan_discrete,
)
from zipfstage.fitting.discrete_bootstrap import discrete_bootstrap
from zipfstage.fitting.discrete_compare import compare_discrete
from zipfstage.fitting.prepared import Prepared, prepare
from zipfstage.fitting.rank_slope import rank_slope
from zipfstage.records import STATUS_FAILED, STATUS_OK, STATUS_TOO_FEW, FitRecord

#: fewer positive finite values than this cannot be fitted meaningfully
MIN_VALUES = 5
#: the KS distances xmin can be chosen by (see `fit_power_law`)
KS_RULES = ("powerlaw", "sup")
#: share of repeated values in the tail above which the fit is flagged "ties"
TIES_SHARE = 0.01

#: The closed list of reasons a fit is not "ok" (status, text the reason contains). Without
#: constraints the caller set (`min_tail`, `alpha_range`, `xmin`) only the first two occur, so
#: 5 or more positive finite values of which 2 or more are distinct are always fitted; an
#: alternative whose optimiser did not converge never makes a fit fail (its comparison says so,
#: and the record is flagged `comparison_not_converged`). Tested in tests/test_fitting_steep.py.
NOT_OK_REASONS: tuple[tuple[str, str], ...] = (
    (STATUS_TOO_FEW, "positive finite values (need"),  # fewer than MIN_VALUES
    (STATUS_FAILED, "all values are equal"),
    (STATUS_TOO_FEW, "values, fewer than min_tail"),
    (STATUS_FAILED, "no candidate xmin gives an allowed alpha and tail size"),
    (STATUS_TOO_FEW, "fewer than 2 distinct values at or above xmin"),
)


def fit_power_law(
    x: np.ndarray,
    *,
    xmin: float | None = None,
    xmax: float | None = None,
    min_tail: int | None = None,
    alpha_range: tuple[float | None, float | None] = (1.0, None),
    bootstrap: int = 0,
    seed: int = 0,
    compare: bool = True,
    scan: bool = False,
    exact_scan: bool = False,
    ks: KsRule = "powerlaw",
    discrete: bool = False,
    groups: np.ndarray | None = None,
    alpha_grid: np.ndarray | None = None,
) -> FitRecord:
    """Fit a continuous power law p(x) ~ x^-alpha above xmin (Clauset, Shalizi & Newman 2009).

    Non-positive and non-finite values are dropped and counted in `n_dropped`. Without `xmin`,
    every unique value but the largest is a candidate (as in `powerlaw.Fit`), and the one with the
    smallest KS distance wins; `min_tail` excludes candidates with fewer tail values, `alpha_range`
    those whose alpha lies outside (open interval; nothing is clipped). `xmax` fits a power law
    truncated at xmax (alpha then solves the truncated likelihood equation; `powerlaw` keeps the
    untruncated estimate, so results differ). `bootstrap` > 0 adds Clauset's p-value (over the
    replicates that re-fitted; `n_failed` counts the others) and 95 % intervals, `compare` the
    likelihood-ratio tests, `scan` the KS and alpha of every candidate (pruned candidates hold
    lower bounds unless `exact_scan`). `slope`/`r2` are the descriptive OLS fit of
    the tail's rank-frequency plot. `ks_distance` is `powerlaw`'s KS distance, `ks_sup` the
    two-sided supremum (larger on ties; `ks="sup"` picks xmin by it). Unfittable data: `reason`.
    `discrete` fits the discrete power law on the integers (`discrete.py`: Hurwitz-zeta
    normaliser, its own alternatives and bootstrap); the data must then be integers, and `xmax`
    is not supported. `groups` labels each value with its sequence (same length as `x`):
    dependent tokens widen the KS distance, so the continuous bootstrap then draws whole
    sequences (`p_value_method` says which scheme). `alpha_grid` (discrete only): each alpha is
    the grid's most likely, as Clauset's plfit with `CLAUSET_ALPHA_GRID` (README, Discrete data).
    """
    grid = _checked_options(x, ks, groups, discrete, alpha_grid)
    prep = prepare(x, xmax=xmax)
    if discrete:
        _check_discrete(prep, xmax)
    refusal = _refusal(prep, xmax, min_tail)
    if refusal is not None:
        return refusal
    tail = _find_tail(prep, xmin, xmax, min_tail, alpha_range, exact_scan, scan, ks, discrete, grid)
    if not isinstance(tail, TailFit):
        return tail.replace(discrete=discrete)
    result = _tail_result(prep, tail, xmax, min_tail, alpha_range, discrete).replace(
        alpha_grid=grid_label(grid)
    )
    if compare:
        result = _with_comparisons(result, prep.x[tail.k :], tail, xmax)
    if bootstrap > 0:
        sorted_groups = None if groups is None else groups_in_sorted_order(x, groups, xmax)
        boot = _bootstrap(
            prep, tail, bootstrap, seed, xmax, min_tail, alpha_range, ks, discrete, sorted_groups,
            grid,
        )  # fmt: skip
        result = _with_bootstrap(result, boot, xmin_given=xmin is not None)
    return result


def _checked_options(
    x: np.ndarray,
    ks: str,
    groups: np.ndarray | None,
    discrete: bool,
    alpha_grid: np.ndarray | None,
) -> np.ndarray | None:
    """Refuse options that cannot apply, in one line each; the alpha grid sorted."""
    if ks not in KS_RULES:
        raise ZipfstageError(f"ks must be one of {', '.join(KS_RULES)}, not {ks!r}")
    if groups is not None and np.size(groups) != np.size(x):
        raise ZipfstageError(f"groups has {np.size(groups)} labels for {np.size(x)} values")
    if alpha_grid is not None and not discrete:
        raise ZipfstageError("alpha_grid is for discrete=True fits; leave it out here")
    return checked_grid(alpha_grid)


def _with_bootstrap(result: FitRecord, boot: BootstrapResult, xmin_given: bool) -> FitRecord:
    """p, its provenance and the intervals (no xmin interval for a given xmin)."""
    return result.replace(
        p_value=boot.p_value,
        p_value_method=boot.method,
        p_value_grid=boot.grid,
        n_failed=boot.n_failed,
        alpha_ci=boot.alpha_ci,
        xmin_ci=None if xmin_given else boot.xmin_ci,
        bootstrap_alpha=boot.alphas,
        bootstrap_xmin=boot.xmins,
    )


def _bootstrap(
    prep: Prepared,
    tail: TailFit,
    replicates: int,
    seed: int,
    xmax: float | None,
    min_tail: int | None,
    alpha_range: tuple[float | None, float | None],
    ks: KsRule,
    discrete: bool,
    groups: np.ndarray | None,
    alpha_grid: np.ndarray | None = None,
) -> BootstrapResult:
    """The continuous bootstrap (whole sequences when `groups` says which they are), or the
    discrete one (its own synthetic tails and re-fits, drawn independently)."""
    if discrete:
        return discrete_bootstrap(
            prep, tail, replicates, seed, min_tail=min_tail, alpha_range=alpha_range, ks=ks,
            alpha_grid=alpha_grid,
        )  # fmt: skip
    return run_bootstrap(
        prep,
        tail,
        replicates,
        seed,
        xmax=xmax,
        min_tail=min_tail,
        alpha_range=alpha_range,
        ks=ks,
        groups=groups,
    )


def _check_discrete(prep: Prepared, xmax: float | None) -> None:
    """The discrete law lives on the integers; a truncation xmax is for the continuous one."""
    if xmax is not None:
        raise ZipfstageError("xmax is not supported with discrete=True; leave one of them out")
    if prep.n and not is_integer_valued(prep.x):
        raise ZipfstageError(
            "discrete=True needs integer values (counts); these are not: fit them continuously"
        )


def unfit(status: str, reason: str, n: int, n_dropped: int, **extra: Any) -> FitRecord:
    """A result for data that cannot be fitted: every estimate None, the reason said."""
    return FitRecord(status=status, reason=reason, n_tail=0, n=n, n_dropped=n_dropped, **extra)


def _refusal(prep: Prepared, xmax: float | None, min_tail: int | None) -> FitRecord | None:
    """Data too small or too flat for any fit, before a scan is tried."""
    n, dropped = prep.n, prep.n_dropped
    if n < MIN_VALUES:
        reason = f"{n} positive finite values (need {MIN_VALUES})"
        return unfit(STATUS_TOO_FEW, reason, n, dropped, xmax=xmax)
    if prep.unique.size < 2:
        return unfit(STATUS_FAILED, "all values are equal", n, dropped, xmax=xmax)
    if min_tail and n < min_tail:
        reason = f"{n} values, fewer than min_tail={min_tail}"
        return unfit(STATUS_TOO_FEW, reason, n, dropped, xmax=xmax)
    return None


def _find_tail(
    prep: Prepared,
    xmin: float | None,
    xmax: float | None,
    min_tail: int | None,
    alpha_range: tuple[float | None, float | None],
    exact_scan: bool,
    scan: bool,
    ks: KsRule,
    discrete: bool = False,
    alpha_grid: np.ndarray | None = None,
) -> TailFit | FitRecord:
    """The tail at a given xmin, or the best by KS; an unfit result when there is none."""
    n, dropped = prep.n, prep.n_dropped
    if xmin is not None and discrete:
        tail = fixed_discrete(prep, float(xmin), ks=ks, alpha_grid=alpha_grid)
        reason = f"fewer than 2 distinct values at or above xmin={xmin}"
        status = STATUS_TOO_FEW
    elif xmin is not None:
        tail = fixed_tail(prep, float(xmin), xmax, ks=ks)
        reason = f"fewer than 2 distinct values at or above xmin={xmin}"
        status = STATUS_TOO_FEW
    elif discrete:
        tail = scan_discrete(
            prep, min_tail=min_tail, alpha_range=alpha_range, keep_scan=scan,
            exact_scan=exact_scan, ks=ks, alpha_grid=alpha_grid,
        )  # fmt: skip
        reason = "no candidate xmin gives an allowed alpha and tail size"
        status = STATUS_FAILED
    else:
        tail = scan_tail(
            prep,
            xmax=xmax,
            min_tail=min_tail,
            alpha_range=alpha_range,
            exact_scan=exact_scan,
            keep_scan=scan,
            ks=ks,
        )
        reason = "no candidate xmin gives an allowed alpha and tail size"
        status = STATUS_FAILED
    return tail if tail is not None else unfit(status, reason, n, dropped, xmax=xmax)


def _tail_result(
    prep: Prepared,
    tail: TailFit,
    xmax: float | None,
    min_tail: int | None,
    alpha_range: tuple[float | None, float | None],
    discrete: bool = False,
) -> FitRecord:
    tail_values = prep.x[tail.k :]
    slope, intercept, r2 = rank_slope(tail_values)
    return FitRecord(
        alpha=tail.alpha,
        alpha_binned=None if discrete or xmax is not None else _binned_alpha(tail_values),
        xmin=tail.xmin,
        xmax=xmax,
        ks_distance=tail.ks,
        ks_sup=tail.ks_sup,
        n_tail=tail.n_tail,
        n=prep.n,
        n_dropped=prep.n_dropped,
        sigma=(tail.alpha - 1.0) / np.sqrt(tail.n_tail),
        slope=slope,
        intercept=intercept,
        r2=r2,
        status=STATUS_OK,
        flags=_flags(tail, tail_values, alpha_range, min_tail),
        scan=tail.scan,
        discrete=discrete,
    )


def _binned_alpha(tail_values: np.ndarray) -> float | None:
    """The binned-likelihood alpha of a tail stored on the bf16/fp16 grid (None off the grid)."""
    rounding = storage_grid(tail_values)
    return None if rounding is None else binned_alpha(tail_values, rounding)


def _with_comparisons(
    result: FitRecord, tail_values: np.ndarray, tail: TailFit, xmax: float | None
) -> FitRecord:
    """Likelihood-ratio tests need the untruncated law: with xmax they are skipped, and flagged."""
    if xmax is not None:
        return result.replace(flags=(*result.flags, "no_comparisons_with_xmax"))
    compare = compare_discrete if result.discrete else compare_alternatives
    comparisons = compare(tail_values, tail.xmin, tail.alpha)
    flags = result.flags
    if not all(c.converged for c in comparisons.values()):
        flags = (*flags, "comparison_not_converged")
    return result.replace(comparisons=comparisons, flags=flags)


def _flags(
    tail: TailFit,
    values: np.ndarray,
    alpha_range: tuple[float | None, float | None],
    min_tail: int | None,
) -> tuple[str, ...]:
    flags = []
    for bound in alpha_range:
        if bound is not None and abs(tail.alpha - bound) <= 1e-3 * max(abs(bound), 1.0):
            flags.append("alpha_at_bound")
    if values.size and np.mean(values[1:] == values[:-1]) > TIES_SHARE:
        flags.append("ties")
    if tail.k == 0:
        flags.append("xmin_at_lowest_value")
    if min_tail and tail.at_last_candidate:
        flags.append("tail_at_min_size")
    return tuple(dict.fromkeys(flags))

"""Clauset's semi-parametric bootstrap: goodness-of-fit p-value and confidence intervals.

Each synthetic data set has the original size n; each value comes, with probability n_tail / n, from
the fitted power law above xmin, and otherwise is resampled from the observed values below xmin.
Each synthetic set is re-fitted in full (xmin and alpha), and p is the share of synthetic KS
distances at least the observed one (the distance xmin is chosen by, `ks`). The same re-fits give
percentile intervals for alpha and xmin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zipfstage.fitting.continuous import KsRule, TailFit, scan_tail
from zipfstage.fitting.prepared import Prepared, from_sorted


@dataclass(frozen=True)
class BootstrapResult:
    p_value: float
    alpha_ci: tuple[float, float]
    xmin_ci: tuple[float, float]
    alphas: np.ndarray
    xmins: np.ndarray
    n_failed: int


def power_law_sample(
    rng: np.random.Generator, size: int, alpha: float, xmin: float, xmax: float | None
) -> np.ndarray:
    """Inverse-CDF draws from the power law on [xmin, inf) or [xmin, xmax]."""
    u = rng.random(size)
    beta = alpha - 1.0
    if xmax is None:
        return np.asarray(xmin * np.exp(-np.log1p(-u) / beta))
    tail_mass = -np.expm1(-beta * np.log(xmax / xmin))
    return np.asarray(xmin * np.exp(-np.log1p(-u * tail_mass) / beta))


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """Round to the nearest bfloat16 (ties to even), as torch's cast does, returned as float64."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def round_to_float16(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(np.float16).astype(np.float64)


Rounding = Callable[[np.ndarray], np.ndarray]


def storage_grid(values: np.ndarray) -> Rounding | None:
    """How the data were rounded, if they all lie on the bfloat16 or float16 grid.

    Activations collected in bf16/fp16 are exact numbers of that grid and tie heavily. Synthetic
    tails drawn from a continuous law have no ties, which inflates the data's KS distance relative
    to theirs and biases the p-value low; drawing synthetic tails onto the same grid removes that.
    """
    if values.size == 0 or not np.all(np.isfinite(values)):
        return None
    for rounding in (round_to_bfloat16, round_to_float16):
        with np.errstate(over="ignore"):
            if np.array_equal(rounding(values), values):
                return rounding
    return None


def bootstrap(
    prep: Prepared,
    fit: TailFit,
    replicates: int,
    seed: int,
    *,
    xmax: float | None = None,
    min_tail: int | None = None,
    alpha_range: tuple[float | None, float | None] = (1.0, None),
    level: float = 0.95,
    ks: KsRule = "powerlaw",
) -> BootstrapResult:
    """Run `replicates` semi-parametric re-fits with their own seeded generator."""
    rng = np.random.default_rng(seed)
    n = prep.n
    body = prep.x[: fit.k]
    grid = storage_grid(prep.x[fit.k :])
    alphas = np.full(replicates, np.nan)
    xmins = np.full(replicates, np.nan)
    distances = np.full(replicates, np.nan)
    for i in range(replicates):
        n_tail = int(rng.binomial(n, fit.n_tail / n)) if body.size else n
        synthetic = np.concatenate(
            [
                rng.choice(body, size=n - n_tail, replace=True) if n_tail < n else body[:0],
                _on_grid(power_law_sample(rng, n_tail, fit.alpha, fit.xmin, xmax), grid),
            ]
        )
        synthetic.sort()
        refit = scan_tail(
            from_sorted(synthetic), xmax=xmax, min_tail=min_tail, alpha_range=alpha_range, ks=ks
        )
        if refit is not None:
            alphas[i], xmins[i], distances[i] = refit.alpha, refit.xmin, refit.distance()
    done = np.isfinite(distances)
    tails = ((1 - level) / 2 * 100, (1 + level) / 2 * 100)
    if not done.any():
        nan2 = (float("nan"), float("nan"))
        return BootstrapResult(float("nan"), nan2, nan2, alphas, xmins, replicates)
    p_value = float(np.mean(distances[done] >= fit.distance()))
    a_lo, a_hi = np.percentile(alphas[done], tails)
    x_lo, x_hi = np.percentile(xmins[done], tails)
    return BootstrapResult(
        p_value,
        (float(a_lo), float(a_hi)),
        (float(x_lo), float(x_hi)),
        alphas,
        xmins,
        int((~done).sum()),
    )


def _on_grid(draws: np.ndarray, grid: Rounding | None) -> np.ndarray:
    return draws if grid is None else grid(draws)

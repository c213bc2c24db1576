"""Clauset's semi-parametric bootstrap: goodness-of-fit p-value and confidence intervals.

Each synthetic data set has the original size n; each value comes, with probability n_tail / n, from
the fitted power law above xmin, and otherwise is resampled from the observed values below xmin.
Each synthetic set is re-fitted in full (xmin and alpha), and p is the share of synthetic KS
distances at least the observed one (the distance xmin is chosen by, `ks`). The same re-fits give
percentile intervals for alpha and xmin.

Tokens of one sequence are dependent, which widens the data's KS distance beyond what independent
synthetic draws reproduce, so p comes out too small. Given each value's sequence (`groups`), the
synthetic set is instead built from whole sequences drawn with replacement (a cluster bootstrap):
a drawn token below xmin keeps its value, as Clauset's body resampling does, and a drawn tail
token gets the power law's quantile at its own tail rank, jittered within that rank's stratum. The
marginal is the fitted law, the dependence is the data's own (its ranks), and with one token per
sequence this is exactly the independent scheme."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zipfstage.fitting.continuous import KsRule, TailFit, scan_tail
from zipfstage.fitting.prepared import Prepared, from_sorted

#: `FitRecord.p_value_method`: every synthetic value drawn independently
METHOD_IID = "iid"
#: whole sequences drawn with replacement, tail values by their ranks (see the module docstring)
METHOD_SEQUENCES = "sequence_blocks"
#: fewer distinct sequences than this cannot show how much sequences vary: the draw stays iid
MIN_SEQUENCES = 20


@dataclass(frozen=True)
class BootstrapResult:
    p_value: float
    alpha_ci: tuple[float, float]
    xmin_ci: tuple[float, float]
    alphas: np.ndarray
    xmins: np.ndarray
    n_failed: int
    #: how the synthetic sets were drawn (`METHOD_IID` or `METHOD_SEQUENCES`)
    method: str = METHOD_IID
    #: the grid synthetic tails were rounded to: "bfloat16", "float16" or "continuous"
    grid: str = "continuous"


def power_law_sample(
    rng: np.random.Generator, size: int, alpha: float, xmin: float, xmax: float | None
) -> np.ndarray:
    """Inverse-CDF draws from the power law on [xmin, inf) or [xmin, xmax]."""
    return power_law_quantile(rng.random(size), alpha, xmin, xmax)


def power_law_quantile(u: np.ndarray, alpha: float, xmin: float, xmax: float | None) -> np.ndarray:
    """The power law's quantile function at probabilities u in [0, 1)."""
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
    groups: np.ndarray | None = None,
) -> BootstrapResult:
    """Run `replicates` semi-parametric re-fits with their own seeded generator.

    `groups` labels each value of `prep.x` (in its sorted order) with its sequence; with at least
    `MIN_SEQUENCES` of them, synthetic sets are drawn as whole sequences (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    grid = storage_grid(prep.x[fit.k :])
    blocks = sequence_blocks(groups) if groups is not None else None
    if blocks is not None and blocks.count < MIN_SEQUENCES:
        blocks = None
    alphas = np.full(replicates, np.nan)
    xmins = np.full(replicates, np.nan)
    distances = np.full(replicates, np.nan)
    for i in range(replicates):
        if blocks is None:
            synthetic = _iid_draw(rng, prep, fit, xmax, grid)
        else:
            synthetic = _block_draw(rng, prep, fit, xmax, grid, blocks)
        synthetic.sort()
        refit = scan_tail(
            from_sorted(synthetic), xmax=xmax, min_tail=min_tail, alpha_range=alpha_range, ks=ks
        )
        if refit is not None:
            alphas[i], xmins[i], distances[i] = refit.alpha, refit.xmin, refit.distance()
    method = METHOD_IID if blocks is None else METHOD_SEQUENCES
    return _summary(alphas, xmins, distances, fit.distance(), level, method, _grid_name(grid))


def _summary(
    alphas: np.ndarray,
    xmins: np.ndarray,
    distances: np.ndarray,
    observed: float,
    level: float,
    method: str,
    grid: str,
) -> BootstrapResult:
    """p over the replicates that re-fitted, and percentile intervals."""
    done = np.isfinite(distances)
    tails = ((1 - level) / 2 * 100, (1 + level) / 2 * 100)
    n_failed = int((~done).sum())
    if not done.any():
        nan2 = (float("nan"), float("nan"))
        return BootstrapResult(float("nan"), nan2, nan2, alphas, xmins, n_failed, method, grid)
    p_value = float(np.mean(distances[done] >= observed))
    a_lo, a_hi = np.percentile(alphas[done], tails)
    x_lo, x_hi = np.percentile(xmins[done], tails)
    return BootstrapResult(
        p_value,
        (float(a_lo), float(a_hi)),
        (float(x_lo), float(x_hi)),
        alphas,
        xmins,
        n_failed,
        method,
        grid,
    )


def _iid_draw(
    rng: np.random.Generator,
    prep: Prepared,
    fit: TailFit,
    xmax: float | None,
    grid: Rounding | None,
) -> np.ndarray:
    """Clauset's draw: each value from the tail law with probability n_tail / n, else the body."""
    n = prep.n
    body = prep.x[: fit.k]
    n_tail = int(rng.binomial(n, fit.n_tail / n)) if body.size else n
    return np.concatenate(
        [
            rng.choice(body, size=n - n_tail, replace=True) if n_tail < n else body[:0],
            _on_grid(power_law_sample(rng, n_tail, fit.alpha, fit.xmin, xmax), grid),
        ]
    )


@dataclass(frozen=True)
class SequenceBlocks:
    """The values of each sequence: `members[starts[g] : starts[g] + sizes[g]]` index `prep.x`."""

    members: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @property
    def count(self) -> int:
        return int(self.sizes.size)


def sequence_blocks(groups: np.ndarray) -> SequenceBlocks:
    """Index the values by sequence label (any labels; values of one label form one block)."""
    _, codes, sizes = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    members = np.argsort(codes.ravel(), kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return SequenceBlocks(members, starts, sizes)


def block_indices(rng: np.random.Generator, blocks: SequenceBlocks, n: int) -> np.ndarray:
    """Indices of n values: whole sequences drawn with replacement, the last one cut at n."""
    expected = int(np.ceil(n / blocks.sizes.mean()))
    picks = rng.integers(blocks.count, size=expected + 1)
    while blocks.sizes[picks].sum() < n:
        picks = np.concatenate([picks, rng.integers(blocks.count, size=expected // 4 + 1)])
    sizes = blocks.sizes[picks]
    ends = np.cumsum(sizes)
    used = int(np.searchsorted(ends, n)) + 1
    picks, sizes, ends = picks[:used], sizes[:used], ends[:used]
    within = np.arange(int(ends[-1])) - np.repeat(ends - sizes, sizes)
    return np.asarray(blocks.members[np.repeat(blocks.starts[picks], sizes) + within][:n])


def _block_draw(
    rng: np.random.Generator,
    prep: Prepared,
    fit: TailFit,
    xmax: float | None,
    grid: Rounding | None,
    blocks: SequenceBlocks,
) -> np.ndarray:
    """Whole sequences: body tokens keep their values, tail tokens get the law's quantile at their
    tail rank plus a uniform jitter inside the rank's stratum (so each is uniform on its own)."""
    picked = block_indices(rng, blocks, prep.n)
    in_tail = picked >= fit.k
    ranks = picked[in_tail] - fit.k
    u = (ranks + rng.random(ranks.size)) / fit.n_tail
    tail = _on_grid(power_law_quantile(u, fit.alpha, fit.xmin, xmax), grid)
    return np.concatenate([prep.x[picked[~in_tail]], tail])


def groups_in_sorted_order(
    values: np.ndarray, groups: np.ndarray, xmax: float | None = None
) -> np.ndarray:
    """Each prepared value's group, in `prepare`'s order: the same mask (positive, finite, at most
    xmax) and a stable sort of the values (tied values may trade labels; no draw can tell)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    labels = np.asarray(groups).ravel()
    keep = np.isfinite(x) & (x > 0)
    if xmax is not None:
        keep &= x <= xmax
    kept = x[keep]
    return np.asarray(labels[keep][np.argsort(kept, kind="stable")])


def _grid_name(grid: Rounding | None) -> str:
    if grid is round_to_bfloat16:
        return "bfloat16"
    if grid is round_to_float16:
        return "float16"
    return "continuous"


def _on_grid(draws: np.ndarray, grid: Rounding | None) -> np.ndarray:
    return draws if grid is None else grid(draws)

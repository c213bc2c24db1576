"""Clauset's semi-parametric bootstrap for the discrete power law (his section 4.1, as
`bootstrap` does for the continuous one): each synthetic set has the data's size n; with
probability n_tail / n a value is an exact draw from the fitted discrete power law above xmin
(`discrete.sample`), otherwise a resampled observed value below xmin. Each set is re-fitted in
full by the discrete scan; p is the share of synthetic KS distances at least the observed one."""

from __future__ import annotations

import numpy as np

from zipfstage.fitting.bootstrap import BootstrapResult
from zipfstage.fitting.continuous import KsRule, TailFit
from zipfstage.fitting.discrete import sample, scan_discrete
from zipfstage.fitting.prepared import Prepared, from_sorted


def discrete_bootstrap(
    prep: Prepared,
    fit: TailFit,
    replicates: int,
    seed: int,
    *,
    min_tail: int | None = None,
    alpha_range: tuple[float | None, float | None] = (1.0, None),
    level: float = 0.95,
    ks: KsRule = "powerlaw",
    alpha_grid: np.ndarray | None = None,
) -> BootstrapResult:
    """Run `replicates` semi-parametric discrete re-fits with their own seeded generator; the
    re-fits pick alpha on `alpha_grid` when the fit did."""
    rng = np.random.default_rng(seed)
    n = prep.n
    body = prep.x[: fit.k]
    alphas = np.full(replicates, np.nan)
    xmins = np.full(replicates, np.nan)
    distances = np.full(replicates, np.nan)
    for i in range(replicates):
        n_tail = int(rng.binomial(n, fit.n_tail / n)) if body.size else n
        synthetic = np.concatenate(
            [
                rng.choice(body, size=n - n_tail, replace=True) if n_tail < n else body[:0],
                sample(rng, n_tail, fit.alpha, fit.xmin),
            ]
        )
        synthetic.sort()
        refit = scan_discrete(
            from_sorted(synthetic),
            min_tail=min_tail,
            alpha_range=alpha_range,
            ks=ks,
            alpha_grid=alpha_grid,
        )
        if refit is not None:
            alphas[i], xmins[i], distances[i] = refit.alpha, refit.xmin, refit.distance()
    done = np.isfinite(distances)
    if not done.any():
        nan2 = (float("nan"), float("nan"))
        return BootstrapResult(float("nan"), nan2, nan2, alphas, xmins, replicates)
    tails = ((1 - level) / 2 * 100, (1 + level) / 2 * 100)
    a_lo, a_hi = np.percentile(alphas[done], tails)
    x_lo, x_hi = np.percentile(xmins[done], tails)
    return BootstrapResult(
        float(np.mean(distances[done] >= fit.distance())),
        (float(a_lo), float(a_hi)),
        (float(x_lo), float(x_hi)),
        alphas,
        xmins,
        int((~done).sum()),
        grid="integers",
    )

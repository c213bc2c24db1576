"""Benchmark: why a bootstrap interval for alpha can miss alpha (README, "Intervals that miss
their estimate"). Not a timed test: it prints what the estimator does.

Run: python benchmarks/bench_intervals.py [--replicates 40]
Pareto samples with a known alpha, fitted once as float32 and once rounded to bfloat16 (as a
bf16 collect stores them), each with Clauset's bootstrap. Per row: the true alpha, the estimate,
its 95 % percentile interval, whether the interval misses the estimate, the median re-fitted alpha,
and 2 * estimate - median (the estimate with the bootstrap's own bias estimate taken off), and the
binned-likelihood alpha at the same xmin (`alpha_binned`, bf16 rows only).
"""

from __future__ import annotations

import argparse

import numpy as np

from zipfstage.fitting import fit_power_law
from zipfstage.fitting.bootstrap import round_to_bfloat16

ALPHAS = (3.0, 8.0, 20.0, 40.0)
SIZES = (5_000, 20_000)
XMIN = 3.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        "true a    n       storage  estimate  95% interval        misses  median a*  2a-a*   binned"
    )
    for alpha in ALPHAS:
        for n in SIZES:
            x = XMIN * (1.0 + rng.pareto(alpha - 1, n))
            for name, data in (
                ("float32", x.astype(np.float32)),
                ("bfloat16", round_to_bfloat16(x)),
            ):
                fit = fit_power_law(data, bootstrap=args.replicates, seed=1)
                assert fit.alpha is not None and fit.alpha_ci is not None
                median = float(np.nanmedian(fit.bootstrap_alpha))
                low, high = fit.alpha_ci
                print(
                    f"{alpha:6.1f} {n:7,} {name:>9}  {fit.alpha:8.3f}  ({low:7.3f}, {high:7.3f})"
                    f"  {'yes' if fit.ci_excludes_alpha else 'no':>6}  {median:9.3f}"
                    f"  {2 * fit.alpha - median:6.3f}  {_fmt(fit.alpha_binned):>7}",
                    flush=True,
                )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()

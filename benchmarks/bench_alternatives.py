"""Benchmark: the four likelihood-ratio comparisons, and the cold start (not a timed test).

Run: python benchmarks/bench_alternatives.py [--skip-powerlaw] [--skip-cold]
Prints one line per case:
- comparisons vs the xmin scan on the same data (n = 50,000 and 1,000,000): best of a few runs
  each, and their ratio (target: at most 2);
- `fit_power_law(x)` (scan + 4 comparisons) vs `powerlaw.Fit` + its four `distribution_compare`
  calls at n = 10,000 (target ratio: at least 300);
- the first fit in a fresh process from an empty numba cache vs a second process on that cache
  (wall and CPU seconds; CPU is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zipfstage.fitting import fit_power_law
from zipfstage.fitting.compare import compare_alternatives
from zipfstage.records import ALTERNATIVES

ROOT = Path(__file__).resolve().parents[1]
FIRST_FIT = (
    "import numpy as np\n"
    "from zipfstage.fitting import fit_power_law\n"
    "fit_power_law(np.random.default_rng(0).pareto(1.5, 2000) + 1)\n"
)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def comparisons_vs_scan(rng: np.random.Generator) -> None:
    for n, repeat in ((50_000, 7), (1_000_000, 3)):
        cases = {
            "pareto": rng.pareto(1.5, n) + 1,
            "|t3|": np.abs(rng.standard_t(3, n)),
            "body+tail": np.r_[rng.lognormal(0, 0.5, n // 2), rng.pareto(1.5, n // 2) + 2],
        }
        for name, x in cases.items():
            fit = fit_power_law(x, compare=False)
            assert fit.xmin is not None and fit.alpha is not None
            tail = np.sort(x)[-fit.n_tail :]
            xmin, alpha = fit.xmin, fit.alpha
            t_scan = best_of(lambda x=x: fit_power_law(x, compare=False), repeat)
            t_cmp = best_of(lambda t=tail, m=xmin, a=alpha: compare_alternatives(t, m, a), repeat)
            print(
                f"compare vs scan  {name:10s} n={n:>9,} n_tail={fit.n_tail:>7,}  "
                f"scan {t_scan:.4f} s  comparisons {t_cmp:.4f} s  ratio {t_cmp / t_scan:.2f}"
            )


def against_powerlaw(rng: np.random.Generator) -> None:
    import powerlaw

    x = np.r_[rng.lognormal(0, 0.5, 5000), rng.pareto(1.5, 5000) + 2]

    def reference() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = powerlaw.Fit(x, parameter_ranges={"alpha": [1, None]}, verbose=0)
            for name in ALTERNATIVES:
                ref.distribution_compare("power_law", name)

    t_ours = best_of(lambda: fit_power_law(x), 5)
    t_ref = best_of(reference, 1)
    print(
        f"fit + 4 comparisons vs powerlaw  n=10,000  ours {t_ours:.4f} s  "
        f"powerlaw {t_ref:.2f} s  ratio {t_ref / t_ours:.0f}"
    )


def first_fit_seconds(cache: str) -> tuple[float, float]:
    """Wall and CPU seconds of a fresh interpreter that imports zipfstage and fits once."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", FIRST_FIT], env=env, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cold_start() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = first_fit_seconds(cache)
        warm = first_fit_seconds(cache)
    print(
        f"first fit, empty numba cache: {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU; "
        f"warm cache: {warm[0]:.2f} s wall, {warm[1]:.2f} s CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-powerlaw", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fit_power_law(rng.pareto(1.5, 500) + 1)  # load the compiled kernels
    comparisons_vs_scan(rng)
    if not args.skip_powerlaw:
        against_powerlaw(rng)
    if not args.skip_cold:
        cold_start()


if __name__ == "__main__":
    main()

"""Benchmark: the discrete p-values of Table 6.1 (Clauset, Shalizi & Newman 2009), with the exact
MLE and with Clauset's alpha grid (README, "Discrete data"). Not a timed test.

Run: python benchmarks/bench_table_6_1.py [--seeds 8] [--replicates 500]
Needs ../shared/reference-data (words.txt, terrorism.txt). Per data set, KS rule and alpha choice:
the mean and spread of p over the seeds, and the observed KS distance the p-value is measured
against (the grid moves it; the re-fits' distances barely move).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tests.shared_data import reference_data
from zipfstage.fitting import CLAUSET_ALPHA_GRID, fit_power_law

PAPER = {"words": 0.49, "terrorism": 0.68}


def p_values(x: np.ndarray, ks: str, grid: np.ndarray | None, seeds: int, boot: int) -> list:
    """One fit per seed, each with `boot` bootstrap replicates."""
    options = {"discrete": True, "compare": False, "bootstrap": boot, "ks": ks, "alpha_grid": grid}
    return [fit_power_law(x, seed=seed, **options) for seed in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--replicates", type=int, default=500)
    args = parser.parse_args()
    print("| data | KS | alpha | xmin | alpha value | observed KS | p (mean ± sd) | paper | time |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, paper in PAPER.items():
        x = reference_data(name)
        for ks in ("powerlaw", "sup"):
            for label, grid in (("exact MLE", None), ("grid 0.01", CLAUSET_ALPHA_GRID)):
                started = time.perf_counter()
                fits = p_values(x, ks, grid, args.seeds, args.replicates)
                p = np.array([f.p_value for f in fits], dtype=float)
                fit = fits[0]
                observed = fit.ks_sup if ks == "sup" else fit.ks_distance
                print(
                    f"| {name} | {ks} | {label} | {fit.xmin:g} | {fit.alpha:.4f} | "
                    f"{observed:.5f} | {p.mean():.3f} ± {p.std():.3f} | {paper} | "
                    f"{time.perf_counter() - started:.0f} s |"
                )


if __name__ == "__main__":
    main()

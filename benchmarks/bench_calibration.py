"""Benchmark: is the bootstrap p-value calibrated under the null? (not a timed test)

Every case draws data whose marginal law is exactly a power law (Pareto, alpha 2.5, xmin 1), fits
it with `fit_power_law(..., bootstrap=B)` and counts how often p < 0.1; a calibrated test rejects
10 % of the time. With B + 1 a multiple of 10 this holds for any B (a Monte Carlo test: the
observed distance is one of B + 1 exchangeable draws), so a modest B measures calibration exactly;
only the power needs a large B. Cases:

- `independent`: independent values; `bf16`: the same, rounded to bfloat16 (the store's grid);
- `rho 0.6`, `rho 0.9`: a Gaussian copula along each 256-token sequence (latent AR(1) with that
  lag-1 coefficient), the marginal still exactly the power law; sequences independent.

Each case runs on 20,480 values (80 sequences) fitted whole, and on 50,000 values drawn from a
1,999,872-token store (7,812 sequences) with `fitting.stage.subsample_rows`, the function
`fit --max-samples` draws with. `--scheme sequences` passes each value's sequence to the fit (as
`fit` does); `--scheme iid` calls the fitter without it (the code before sequence blocks).

Run: python benchmarks/bench_calibration.py --scheme sequences [--replicates 400] [--boot 9]
     [--workers 2] [--log FILE] [--first-seed 400]
     python benchmarks/bench_calibration.py --from-logs FILE [FILE ...]   (the table of runs)
Prints the share of p < 0.1 per case with its binomial standard error.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from unittest.mock import patch

import numpy as np
from scipy.signal import lfilter
from scipy.stats import norm

from zipfstage.fitting import bootstrap as bootstrap_module
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.bootstrap import round_to_bfloat16
from zipfstage.fitting.stage import subsample_rows

ALPHA = 2.5
SEQ_LEN = 256
WHOLE_SEQUENCES = 80  # 20,480 values
STORE_SEQUENCES = 7_812  # 1,999,872 tokens
MAX_SAMPLES = 50_000
CASES = ("independent", "bf16", "rho 0.6", "rho 0.9")
#: an ablation, not a default case: bf16 data with synthetic tails left continuous
CONTINUOUS = "bf16 continuous draws"
SIZES = ("whole 20,480", "50,000 of 2M")


def latent_ar1(rng: np.random.Generator, sequences: int, rho: float) -> np.ndarray:
    """Token-major latent N(0, 1) values, an AR(1) with coefficient rho along each sequence."""
    noise = rng.standard_normal((sequences, SEQ_LEN))
    if rho == 0.0:
        return noise.ravel()
    scale = np.sqrt(1.0 - rho * rho)
    noise[:, 0] /= scale  # the first latent value is N(0, 1): the process starts stationary
    return np.asarray(lfilter([scale], [1.0, -rho], noise, axis=1)).ravel()


def case_data(case: str, size: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and each value's sequence index, as `fit` would read them."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{case}/{size}".encode())])
    sequences = WHOLE_SEQUENCES if size == SIZES[0] else STORE_SEQUENCES
    rho = float(case.split()[1]) if case.startswith("rho") else 0.0
    latent = latent_ar1(rng, sequences, rho)
    groups = np.repeat(np.arange(sequences), SEQ_LEN)
    drawn = subsample_rows(latent.size, MAX_SAMPLES, rng)
    if drawn is not None:
        latent, groups = latent[drawn], groups[drawn]
    # the Pareto inverse CDF through the normal survival function keeps the far tail exact
    values = np.asarray(norm.sf(latent) ** (-1.0 / (ALPHA - 1.0)))
    if case in ("bf16", CONTINUOUS):
        values = round_to_bfloat16(values)
    return values, groups


def one_p_value(job: tuple[str, str, int, int, str]) -> tuple[str, str, int, float | None]:
    case, size, seed, boot, scheme = job
    values, groups = case_data(case, size, seed)
    extra = {"groups": groups} if scheme == "sequences" else {}
    with ExitStack() as stack:
        if case == CONTINUOUS:  # what the bootstrap did before it matched the storage grid
            stack.enter_context(patch.object(bootstrap_module, "storage_grid", lambda v: None))
        fit = fit_power_law(values, bootstrap=boot, seed=seed, compare=False, **extra)
    return case, size, seed, fit.p_value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scheme", choices=("sequences", "iid"), default="sequences")
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--boot", type=int, default=9, help="B; B + 1 a multiple of 10")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per fit")
    parser.add_argument("--cases", default=",".join(CASES), help=f"also: {CONTINUOUS!r}")
    parser.add_argument("--sizes", default="whole,drawn")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--from-logs", type=Path, nargs="+", default=None,
        help="print the table of earlier --log files (each (case, size, seed) counted once)",
    )  # fmt: skip
    args = parser.parse_args()
    cases = args.cases.split(",")
    sizes = [size for size, key in zip(SIZES, ("whole", "drawn"), strict=True) if key in args.sizes]
    if args.from_logs:
        print_table(read_logs(args.from_logs), cases, sizes)
        return
    seeds = range(args.first_seed, args.first_seed + args.replicates)
    jobs = [(c, z, seed, args.boot, args.scheme) for seed in seeds for z in sizes for c in cases]
    started = time.perf_counter()
    p_values: dict[tuple[str, str], list[float]] = {}
    log = args.log.open("a") if args.log else None
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for case, size, seed, p in pool.map(one_p_value, jobs, chunksize=4):
            if p is not None:
                p_values.setdefault((case, size), []).append(p)
            if log:
                log.write(json.dumps({"case": case, "size": size, "seed": seed, "p": p}) + "\n")
                log.flush()
    print(f"scheme {args.scheme}, B = {args.boot}, {time.perf_counter() - started:.0f} s")
    print_table(p_values, cases, sizes)


def read_logs(paths: list[Path]) -> dict[tuple[str, str], list[float]]:
    """p-values per (case, size) from --log files; a seed logged twice counts once."""
    seen: dict[tuple[str, str, int], float] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["p"] is not None:
                seen[(row["case"], row["size"], row["seed"])] = row["p"]
    p_values: dict[tuple[str, str], list[float]] = {}
    for (case, size, _), p in sorted(seen.items()):
        p_values.setdefault((case, size), []).append(p)
    return p_values


def print_table(
    p_values: dict[tuple[str, str], list[float]], cases: list[str], sizes: list[str]
) -> None:
    """The share of p < 0.1 per case and size, with its binomial standard error."""
    print(f"| data | {' | '.join(sizes)} |")
    print("| --- |" + " ---: |" * len(sizes))
    for case in cases:
        cells = []
        for size in sizes:
            p = np.asarray(p_values.get((case, size), []))
            share = float(np.mean(p < 0.1)) if p.size else float("nan")
            se = np.sqrt(share * (1 - share) / max(p.size, 1))
            cells.append(f"{share:.3f} ± {se:.3f} (n {p.size})")
        print(f"| {case} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

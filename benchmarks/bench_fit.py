"""Benchmark: zipfstage's exact fit vs `powerlaw.Fit` on the same data (not a timed test).

Run: python benchmarks/bench_fit.py [--skip-powerlaw-above N]
Prints seconds for both, the ratio, and whether xmin / n_tail agree; then a 1,000,000-value fit and
1,000 bootstrap replicates at n = 50,000; then the discrete scan against the continuous scan on the
same integer data (ratio, interleaved, median of repeats with its spread) and against powerlaw's
discrete Fit (`--discrete-only` runs just that part).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from zipfstage.fitting import fit_power_law

_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = next(
    (
        p / "shared" / "reference-data"
        for p in (_ROOT.parent, _ROOT.parent.parent)
        if (p / "shared").is_dir()
    ),
    _ROOT.parent / "shared" / "reference-data",
)


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-powerlaw-above", type=int, default=250_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--discrete-only", action="store_true")
    args = parser.parse_args()
    import powerlaw

    discrete_vs_continuous(powerlaw)
    if args.discrete_only:
        return

    rng = np.random.default_rng(0)
    cases = [
        (f"body+tail n={n:,}", np.r_[rng.lognormal(0, 0.5, n // 2), rng.pareto(1.5, n // 2) + 2])
        for n in (5_000, 20_000, 50_000)
    ]
    cases.append(("pareto n=50,000", rng.pareto(1.5, 50_000) + 1))
    fires = REFERENCE / "fires.txt"
    if fires.exists():
        cases.append((f"fires.txt n={np.loadtxt(fires).size:,}", np.loadtxt(fires)))
    fit_power_law(cases[0][1][:500], compare=False)  # load the compiled kernel
    print(f"{'data':28s} {'ours s':>9s} {'powerlaw s':>11s} {'ratio':>8s}  same xmin/n_tail  alpha")
    for name, x in cases:
        ours, t_ours = timed(fit_power_law, x, compare=False)
        if x.size > args.skip_powerlaw_above:
            print(f"{name:28s} {t_ours:9.4f} {'skipped':>11s}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, t_ref = timed(powerlaw.Fit, x, parameter_ranges={"alpha": [1, None]}, verbose=0)
        same = ours.xmin == ref.xmin and ours.n_tail == ref.n_tail
        print(
            f"{name:28s} {t_ours:9.4f} {t_ref:11.2f} {t_ref / t_ours:8.0f}  {same!s:16s}"
            f"  {ours.alpha:.6f} vs {ref.alpha:.6f}"
        )
    for name, x in [
        ("pareto n=1,000,000", rng.pareto(1.5, 1_000_000) + 1),
        ("lognormal n=1,000,000", rng.lognormal(0, 1, 1_000_000)),
        ("|t3| n=1,000,000", np.abs(rng.standard_t(3, 1_000_000))),
    ]:
        ours, t_ours = timed(fit_power_law, x, compare=False)
        print(f"{name:28s} {t_ours:9.4f}  (exact fit, no comparisons)")
    x = rng.pareto(1.5, 50_000) + 1
    _, t_cmp = timed(fit_power_law, x)
    print(f"{'fit + 4 comparisons 50,000':28s} {t_cmp:9.4f}")
    boot, t_boot = timed(fit_power_law, x, bootstrap=args.replicates, seed=1, compare=False)
    print(f"bootstrap {args.replicates} replicates n=50,000: {t_boot:.1f} s (p = {boot.p_value})")


def discrete_vs_continuous(powerlaw: object, repeats: int = 15) -> None:
    """Discrete / continuous scan time on the same integer data, interleaved in this process."""
    rng = np.random.default_rng(0)
    cases = [(name, np.loadtxt(REFERENCE / f"{name}.txt")) for name in ("words", "terrorism")]
    from zipfstage.fitting.discrete import sample

    tail = sample(rng, 20_000, 2.2, 5.0)
    cases.append(("discrete pareto n=30,000", np.r_[rng.integers(1, 5, 10_000), tail]))
    head = ("integer data", "discrete/continuous", "spread", "powerlaw/discrete")
    print(f"{head[0]:28s} {head[1]:>20s} {head[2]:>16s} {head[3]:>18s}")
    for name, x in cases:
        fit_power_law(x, compare=False, discrete=True)
        fit_power_law(x, compare=False)
        ratios = []
        t_disc = []
        for _ in range(repeats):
            _, t_d = timed(fit_power_law, x, compare=False, discrete=True)
            _, t_c = timed(fit_power_law, x, compare=False)
            ratios.append(t_d / t_c)
            t_disc.append(t_d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, t_ref = timed(
                powerlaw.Fit,  # type: ignore[attr-defined]
                x,
                discrete=True,
                estimate_discrete=False,
                parameter_ranges={"alpha": [1, None]},
                verbose=0,
            )
        lo, mid, hi = np.percentile(ratios, [10, 50, 90])
        print(
            f"{name:28s} {mid:20.2f} {f'{lo:.2f}-{hi:.2f}':>16s} {t_ref / np.median(t_disc):18.0f}"
        )


if __name__ == "__main__":
    main()

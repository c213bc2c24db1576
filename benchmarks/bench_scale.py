"""Benchmark: fit, plot and report on a synthetic store shaped like a Qwen3-4B run (not a test).

Run: python benchmarks/bench_scale.py [--points 37|181] [--tokens 204800] [--max-samples 50000]
    [--repeats 1] [--workers 0] [--scalar-fits-only] [--dir DIR]

37 points = embed + 36 layers (resid_post); 181 points = embed + 36 layers x 5 sites. Every point
has the 16 scalar metrics and 64 channel_wise channels, Pareto tails with lognormal noise whose
alpha changes with depth. Prints, per repeat, the seconds of `fit` and `plot` measured side by
side (fit --force, then plot --force, in this process) and their ratio, then `report`'s seconds,
the figure counts, and the sizes of report.html and of the whole report (page + report_files/).
The store is built once under --dir and reused.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from zipfstage.config import FitSettings, PlotSettings, ReportSettings
from zipfstage.store import StorePlan, StoreWriter, create_store, store_path
from zipfstage.store.layout import SCHEMA_VERSION, RunFolder
from zipfstage.store.writer import finalize_store

METRICS = [
    "rms", "l2_norm", "l1_norm", "max_abs", "mean_abs", "std", "kurtosis", "max_to_median",
    "crest", "participation_ratio", "entropy", "gini", "top1_share", "hoyer", "median_abs",
    "hill_tail",
]  # fmt: skip
SITES = ["attn_out", "resid_mid", "mlp_act", "mlp_out"]
N_LAYERS, CHANNELS, SEQ_LEN, BATCH = 36, 64, 2048, 4


def point_names(n_points: int) -> list[str]:
    """embed + 36 layers, or embed + 36 layers x 5 sites in forward order."""
    if n_points == 1 + N_LAYERS:
        return ["embed"] + [f"layer_{i}" for i in range(N_LAYERS)]
    per_layer = [[f"layer_{i}.{s}" for s in SITES] + [f"layer_{i}"] for i in range(N_LAYERS)]
    return ["embed"] + [p for names in per_layer for p in names]


def build_store(out: Path, points: list[str], tokens: int, seed: int = 0) -> None:
    """A complete store: heavy-tailed metrics whose alpha goes from 2 to 4 with depth."""
    rng = np.random.default_rng(seed)
    plan = StorePlan(batch_size=BATCH, seq_len=SEQ_LEN, planned_batches=tokens // (BATCH * SEQ_LEN))
    channels = sorted(rng.choice(2560, size=CHANNELS, replace=False).tolist())
    layers = {p: -1 if p == "embed" else int(p.split(".")[0].split("_")[1]) for p in points}
    attributes = {
        "schema_version": SCHEMA_VERSION,
        "config": {"model": "synthetic-qwen3-4b", "seed": seed},
        "config_hash": f"bench-scale-{len(points)}-{tokens}",
        "model": {
            "name": "synthetic Qwen3-4B shape",
            "dtype": "bfloat16",
            "n_layers": N_LAYERS,
            "hidden_size": 2560,
            "architecture": "Qwen3ForCausalLM",
        },
        "data": {"source": "synthetic"},
        "versions": {"zipfstage": "bench"},
        "point_layers": layers,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = store_path(out)
    create_store(path, plan, points, [*METRICS, "channel_wise"], channels, attributes)
    writer, rows = StoreWriter(path), plan.rows_per_batch
    for batch in range(plan.planned_batches):
        ids = rng.integers(0, 150_000, size=rows)
        positions = np.tile(np.arange(SEQ_LEN), BATCH)
        values = {}
        for depth, point in enumerate(points):
            alpha = 2.0 + 2.0 * depth / len(points)
            block = (rng.pareto(alpha - 1, size=(rows, len(METRICS) + CHANNELS)) + 1).astype(
                np.float32
            )
            for j, metric in enumerate(METRICS):
                values[(point, metric)] = block[:, j]
            values[(point, "channel_wise")] = block[:, len(METRICS) :]
        writer.write_batch(batch, ids, positions, values)
    finalize_store(path, plan.planned_batches, {"collect_seconds": 0.0})


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:8s} {seconds:8.1f} s  {result.summary}", flush=True)
    return result, seconds


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, choices=[37, 181], default=37)
    parser.add_argument("--tokens", type=int, default=204_800)
    parser.add_argument("--max-samples", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--scalar-fits-only",
        action="store_true",
        help="fit the 16 scalar metrics only, not the 64 channels (a fifth of the fits)",
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/zipfstage-bench-scale"))
    args = parser.parse_args()
    from zipfstage.fitting.stage import run as fit
    from zipfstage.plotting.stage import run as plot
    from zipfstage.report.stage import run as report

    out = args.dir / f"p{args.points}-t{args.tokens}"
    points = point_names(args.points)
    if not store_path(out).exists():
        start = time.perf_counter()
        build_store(out, points, args.tokens)
        print(f"built {out} in {time.perf_counter() - start:.0f} s")
    print(f"{len(points)} points x ({len(METRICS)} metrics + {CHANNELS} channels), "
          f"{args.tokens:,} tokens, fit --max-samples {args.max_samples:,}")  # fmt: skip
    fit_metrics = METRICS if args.scalar_fits_only else ["all"]
    fit_settings = FitSettings(
        max_samples=args.max_samples, workers=args.workers, metrics=fit_metrics
    )
    fit_s, plot_s = [], []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}:")
        fit_s.append(timed("fit", fit, fit_settings, out, force=True)[1])
        plotted, seconds = timed("plot", plot, PlotSettings(workers=args.workers), out, force=True)
        plot_s.append(seconds)
    ratios = [p / f for p, f in zip(plot_s, fit_s, strict=True)]
    print(
        f"plot / fit: median {statistics.median(ratios):.2f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} repeats); "
        f"plot drew {plotted.counts['figures']} figures"
    )
    folder = RunFolder.at(out)
    shutil.rmtree(folder.report_assets, ignore_errors=True)  # draw the report from scratch
    reported, _ = timed("report", report, ReportSettings(workers=args.workers), out)
    page = folder.report_html.stat().st_size / 1e6
    whole = page + folder_mb(folder.report_assets)
    print(
        f"report: {reported.counts['figures']} figures, report.html {page:.1f} MB, "
        f"page + {folder.report_assets.name}/ {whole:.1f} MB"
    )


if __name__ == "__main__":
    main()

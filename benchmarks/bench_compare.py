"""Benchmark: `zipfstage compare` of 5 runs x 36 layers x 14 metrics at 2M tokens (not a test).

Run: python benchmarks/bench_compare.py [--dir DIR] [--tokens 2000000] [--runs 5]
Builds synthetic stores once (kept in DIR, reused): every (point, metric) gets a fit record, but
only the three points the CCDF overlays draw (first, middle, last) get metric data; the other
arrays stay unwritten because compare never reads them (tests/test_compare.py spies on the reader
to prove it). Prints seconds for compare end to end and, as the floor it is measured against, for
reading every run's fit records alone.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import zarr

from zipfstage.compare import run_compare
from zipfstage.compare.content import OVERLAY_DEPTHS
from zipfstage.compare.depth import nearest, place
from zipfstage.store import StorePlan, create_store, store_path
from zipfstage.store.fits import read_fit_records, write_fit
from zipfstage.store.layout import PROGRESS, SCHEMA_VERSION, TOKEN_IDS, TOKEN_POSITIONS
from zipfstage.store.writer import finalize_store

N_LAYERS = 36
BATCH, SEQ = 8, 256
METRICS = ["rms", "l2_norm", "l1_norm", "max_abs", "mean_abs", "std", "kurtosis"]
METRICS += [
    "max_to_median",
    "crest",
    "participation_ratio",
    "entropy",
    "gini",
    "top1_share",
    "hoyer",
]


def build_run(out: Path, n_layers: int, tokens: int, seed: int) -> None:
    """A complete store with fit records everywhere and data at the three overlay depths."""
    rng = np.random.default_rng(seed)
    metrics = METRICS
    points = ["embed", *(f"layer_{i}" for i in range(n_layers))]
    plan = StorePlan(BATCH, SEQ, tokens // (BATCH * SEQ))
    attributes = {
        "schema_version": SCHEMA_VERSION,
        "config": {"seq_len": SEQ},
        "config_hash": f"bench-{seed}",
        "model": {"name": f"bench-model-{seed}", "dtype": "bfloat16", "n_layers": n_layers},
        "data": {"source": "synthetic"},
        "point_layers": {},
    }
    create_store(store_path(out), plan, points, metrics, [], attributes)
    root = zarr.open_group(store_path(out), mode="r+", zarr_format=3)
    rows = plan.planned_rows
    root[TOKEN_IDS][:] = rng.integers(0, 50_000, rows, dtype=np.int32)
    root[TOKEN_POSITIONS][:] = np.tile(np.arange(SEQ, dtype=np.int32), rows // SEQ)
    for depth, point in enumerate(points):
        for metric in metrics:
            alpha = 2.5 + depth / 20
            record = {
                "status": "ok",
                "alpha": alpha,
                "alpha_ci": [alpha - 0.1, alpha + 0.1],
                "xmin": 1.0 + rng.random(),
                "n_tail": 5000,
                "n": 50_000,
                "ks_distance": 0.01,
                "p_value": float(rng.random()),
                "skip_positions": 1,
                "store_tokens": rows,
            }
            write_fit(out, point, metric, record, "bench")
    root[PROGRESS][:] = plan.rows_per_batch
    finalize_store(store_path(out), plan.planned_batches, {"collect_seconds": 0.0})


def fill_drawn(out: Path, n_layers: int, seed: int) -> None:
    """Metric data for the points the CCDF overlays pick, where not written yet."""
    rng = np.random.default_rng(seed)
    root = zarr.open_group(store_path(out), mode="r+", zarr_format=3)
    points = ["embed", *(f"layer_{i}" for i in range(n_layers))]
    places = [p for name in points if (p := place(name, n_layers))]
    drawn = {w.point for d in OVERLAY_DEPTHS.values() if (w := nearest(places, d))}
    for point in sorted(drawn):
        for metric in METRICS:
            array = root[f"metrics/{point}/{metric}"]
            assert isinstance(array, zarr.Array)
            if array.nchunks_initialized == 0:
                depth = points.index(point)
                array[:] = (rng.pareto(1.5 + depth / 20, array.shape[0]) + 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("results/bench-compare"))
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [args.dir / f"run{i}" for i in range(args.runs)]
    for i, run in enumerate(runs):
        if not (run / "store.zarr" / "zarr.json").exists() or not (run / ".built").exists():
            shutil.rmtree(run, ignore_errors=True)
            started = time.perf_counter()
            build_run(run, N_LAYERS, args.tokens, seed=i)
            (run / ".built").touch()
            print(f"built {run} in {time.perf_counter() - started:.1f} s")
        fill_drawn(run, N_LAYERS, seed=100 + i)
    started = time.perf_counter()
    for run in runs:
        read_fit_records(run)
    floor = time.perf_counter() - started
    out = args.dir / "compare"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = run_compare(runs, out)
    total = time.perf_counter() - started
    print(f"{len(runs)} runs x {N_LAYERS} layers x 14 metrics, {args.tokens:,} tokens each")
    print(f"reading every fit record alone: {floor:.2f} s")
    print(f"compare end to end: {total:.2f} s ({len(result.figures)} figures, png)")


if __name__ == "__main__":
    main()

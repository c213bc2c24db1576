"""Benchmark: store compaction and fit-result size on synthetic stores (not a timed test).

Run from the repo root:
    PYTHONPATH=. python benchmarks/bench_store.py [--tokens 2000000] [--points 6] [--skip-fits]
Prints one line per case: files and seconds of compaction on a store of --tokens rows, whole-array
read time before vs after (ratio), and the size of fits/ against metrics/ with and without thinned
channel curves on a demo-sized store (20,480 tokens, 3 points, 64 channels).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import zarr

from tests.synthetic_store import make_synthetic_store
from zipfstage.store import fits as fit_store
from zipfstage.store.compact import compact_store, count_files

SCALARS = ("rms", "max_abs", "kurtosis", "mean_abs", "l1_l2")


def disk_bytes(path: Path) -> int:
    return sum(os.path.getsize(Path(d) / f) for d, _, files in os.walk(path) for f in files)


def read_seconds(path: Path, name: str, repeats: int = 3) -> tuple[float, float]:
    """Best wall and CPU seconds (all threads) of reading the whole array."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        zarr.open_array(path / name, mode="r")[:]
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def bench_compact(root: Path, tokens: int, n_points: int) -> None:
    batch_size, seq_len = 8, 256
    n_batches = -(-tokens // (batch_size * seq_len))
    points = ("embed", *(f"layer_{i}" for i in range(1, n_points)))
    start = time.perf_counter()
    path = make_synthetic_store(
        root / "big",
        points=points,
        metrics=(*SCALARS, "channel_wise"),
        n_batches=n_batches,
        batch_size=batch_size,
        seq_len=seq_len,
        channels=8,
    )
    built = time.perf_counter() - start
    names = ("metrics/embed/rms", "metrics/embed/channel_wise")
    before = {name: read_seconds(path, name) for name in names}
    start_cpu = time.process_time()
    result = compact_store(path)
    cpu = time.process_time() - start_cpu
    after = {name: read_seconds(path, name) for name in names}
    print(
        f"compact {n_batches * batch_size * seq_len:,} tokens x {result.arrays} arrays: "
        f"{result.files_before:,} -> {result.files_after:,} files, {result.seconds:.1f} s "
        f"({cpu:.1f} s CPU; store built in {built:.1f} s, {disk_bytes(path) / 2**20:.0f} MiB)"
    )
    for name in names:
        (wall0, cpu0), (wall1, cpu1) = before[name], after[name]
        print(
            f"read whole {name}: {wall0:.3f} s ({cpu0:.3f} CPU) per-batch chunks, {wall1:.3f} s "
            f"({cpu1:.3f} CPU) sharded, ratio {wall0 / wall1:.1f}x wall {cpu0 / cpu1:.1f}x CPU"
        )


def bench_fit_size(root: Path, thin: bool) -> None:
    from zipfstage.config import FitSettings
    from zipfstage.fitting.stage import run as run_fits

    out = root / f"fits-thin-{thin}"
    path = make_synthetic_store(
        out, metrics=(*SCALARS[:3], "channel_wise"), n_batches=10, batch_size=8, seq_len=256,
        channels=64,
    )  # fmt: skip
    real = fit_store._thinned
    if not thin:
        fit_store._thinned = lambda curves, record: curves  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        run_fits(FitSettings(workers=1), out)
        seconds = time.perf_counter() - start
    finally:
        fit_store._thinned = real  # type: ignore[assignment]
    metrics, fits = disk_bytes(path / "metrics"), disk_bytes(path / "fits")
    print(
        f"fits/ {'thinned' if thin else 'full   '} channel curves: {fits / 2**20:.2f} MiB vs "
        f"metrics/ {metrics / 2**20:.2f} MiB (ratio {fits / metrics:.2f}), "
        f"{count_files(path / 'fits'):,} files, fit {seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--skip-fits", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_store-"))
    try:
        bench_compact(root, args.tokens, args.points)
        if not args.skip_fits:
            for thin in (False, True):
                bench_fit_size(root, thin)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

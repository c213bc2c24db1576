"""What the per-batch checksums cost collect: the same collect with and without them, interleaved.

    python benchmarks/bench_checksums.py [--model demo] [--tokens 4096] [--repeats 5]

For 3 points and for all points, collect runs into a fresh store with `StoreWriter.checksums` on
and off, alternating which goes first in each repeat, so drift on a shared machine hits both
alike. Printed per mode: the median of each repeat's own ratio (with / without; 1.02 = 2 % slower)
by wall time and by process CPU time, with the lowest and highest ratio. A second line times
only what checksums add to a batch (CRC32C of every array's rows and the checksum row's write):
`StoreWriter.write_batch` of one recorded batch, with and without, many times, as a share of the
whole collect's time per batch. That share is far less noisy than the end-to-end ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_collect import run_arguments, run_settings, time_collect

from zipfstage.collect.coordinator import create_or_check_store
from zipfstage.collect.host_memory import keep_freed_memory
from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import PreparedRun, prepare_run
from zipfstage.collect.points import resolve_points
from zipfstage.store import StoreWriter, store_path
from zipfstage.store.writer import TOPK_DTYPES


def timed(run: PreparedRun, out: Path, checksums: bool) -> tuple[float, float, int]:
    StoreWriter.checksums = checksums
    try:
        return time_collect(run, out, check=checksums)
    finally:
        StoreWriter.checksums = True


def batch_write_share(run: PreparedRun, out: Path, per_batch: float, repeats: int) -> list[float]:
    """Extra seconds checksums add to one batch's write, over collect's seconds per batch."""
    out.mkdir(parents=True, exist_ok=True)
    create_or_check_store(run.spec(), out, overwrite=True)
    writer = StoreWriter(store_path(out))
    rows = run.spec().plan.rows_per_batch
    rng = np.random.default_rng(0)
    spec = run.spec()
    arrays = [(p, m) for p in spec.points for m in spec.metrics]
    arrays += [(p, name) for p in spec.topk or {} for name in TOPK_DTYPES]
    values = {}
    for point, metric in arrays:
        chunk_file = writer._chunk_file(f"metrics/{point}/{metric}")
        shape = chunk_file.chunks[1:] if chunk_file else ()
        values[(point, metric)] = rng.random((rows, *shape)).astype(np.float32)
    ids, positions = np.arange(rows), np.arange(rows)
    shares = []
    for _ in range(repeats):
        cost = {}
        for checksums in (True, False):
            StoreWriter.checksums = checksums
            started = time.perf_counter()
            for _ in range(10):
                writer.write_batch(0, ids, positions, values)
            cost[checksums] = (time.perf_counter() - started) / 10
        StoreWriter.checksums = True
        shares.append((cost[True] - cost[False]) / per_batch)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    run_arguments(parser, tokens=4096, repeats=5)
    args = parser.parse_args()
    hide_transformers_progress()
    settings = run_settings(args, compact=False)
    keep_freed_memory()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        base = prepare_run(settings, tmp, place(settings))
        n_layers = base.loaded.architecture.n_layers
        modes = {
            "three": base.at_points(resolve_points(["embed", "middle", "last"], n_layers)),
            "all": base.at_points(resolve_points(["all"], n_layers)),
        }
        print(f"# model {args.model}, {args.tokens} tokens x {args.repeats} repeats")
        print("# <mode> <with/without, wall: median [min, max]> <same by process CPU time>")
        for name, run in modes.items():
            timed(run, tmp / name, True)  # warm-up
            ratios: list[tuple[float, float]] = []
            per_batch: list[float] = []
            for repeat in range(args.repeats):
                order = (True, False) if repeat % 2 == 0 else (False, True)
                result = {flag: timed(run, tmp / name, flag) for flag in order}
                on, off = result[True], result[False]
                ratios.append((on[0] / off[0], on[1] / off[1]))
                per_batch.append(off[0] / (off[2] / run.spec().plan.rows_per_batch))
            wall, cpu = [r[0] for r in ratios], [r[1] for r in ratios]
            print(
                f"{name} wall {statistics.median(wall):.4f} [{min(wall):.4f}, {max(wall):.4f}]"
                f" cpu {statistics.median(cpu):.4f} [{min(cpu):.4f}, {max(cpu):.4f}]"
            )
            shares = batch_write_share(run, tmp / f"{name}-w", statistics.median(per_batch), 7)
            print(
                f"{name} checksum work per batch / collect time per batch: "
                f"{statistics.median(shares):.2%} [{min(shares):.2%}, {max(shares):.2%}]"
            )


if __name__ == "__main__":
    main()

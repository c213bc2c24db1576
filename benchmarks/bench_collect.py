"""Collect throughput against a bare `model(input_ids)` forward of the same batches, same process.

    python benchmarks/bench_collect.py [--model demo] [--tokens 8192] [--seq-len 256] [--repeats 2]

Modes run interleaved (bare, 3 points, all points, bare, ...) so drift on a shared machine hits all
of them alike. Reports tokens/s and the ratio to the bare forward (>1 means faster than bare).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from zipfstage.collect.coordinator import create_or_check_store
from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import PreparedRun, prepare_run
from zipfstage.collect.points import resolve_points
from zipfstage.collect.worker import collect_batches
from zipfstage.config import CollectSettings
from zipfstage.store import StoreWriter, store_path


def time_bare(run: PreparedRun) -> tuple[float, int]:
    model, device = run.loaded.model, run.loaded.device
    tokens, started = 0, time.perf_counter()
    with torch.inference_mode():
        for batch in run.batches():
            model(torch.from_numpy(batch).to(device))
            tokens += batch.size
    return time.perf_counter() - started, tokens


def time_collect(run: PreparedRun, out: Path) -> tuple[float, int]:
    create_or_check_store(run.spec(), out, overwrite=True)
    writer = StoreWriter(store_path(out))
    tokens = 0

    def advance(amount: float = 1) -> None:
        nonlocal tokens
        tokens += int(amount)

    started = time.perf_counter()
    collect_batches(run, writer, advance, lambda: False)
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    hide_transformers_progress()  # an entry point: its output is the table below
    settings = CollectSettings(
        model=args.model,
        max_tokens=args.tokens,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        device=args.device,
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare_run(settings, Path(tmp), place(settings))
        n_layers = base.loaded.architecture.n_layers
        three = dataclasses.replace(
            base, points=resolve_points(["embed", "middle", "last"], n_layers)
        )
        every = dataclasses.replace(base, points=resolve_points(["all"], n_layers))
        time_bare(base)  # warm-up
        totals = {
            "bare forward": [0.0, 0],
            "collect embed,middle,last": [0.0, 0],
            f"collect all ({n_layers + 1} points)": [0.0, 0],
        }
        for _ in range(args.repeats):
            for name, measure in zip(
                totals,
                (
                    lambda: time_bare(base),
                    lambda: time_collect(three, Path(tmp) / "three"),
                    lambda: time_collect(every, Path(tmp) / "all"),
                ),
                strict=True,
            ):
                seconds, tokens = measure()
                totals[name][0] += seconds
                totals[name][1] += tokens
    bare_rate = totals["bare forward"][1] / totals["bare forward"][0]
    device = base.loaded.device
    print(
        f"model {args.model} on {device}, {torch.get_num_threads()} threads, "
        f"{args.tokens} tokens x {args.repeats} repeats, seq_len {args.seq_len}"
    )
    print(f"{'mode':34s} {'tok/s':>10s} {'vs bare':>8s}")
    for name, (seconds, tokens) in totals.items():
        rate = tokens / seconds
        print(f"{name:34s} {rate:10,.0f} {rate / bare_rate:8.3f}")


if __name__ == "__main__":
    main()

"""Collect tokens/s with 1 worker against N workers (default `--devices cpu` vs `cpu,cpu`).

    python benchmarks/bench_workers.py [--model demo] [--tokens 8192] [--devices cpu cpu,cpu]

Each configuration is a full `run_collect` into a fresh store, repeated and interleaved so drift on
a shared machine hits all alike. "collect tok/s" counts from the moment every worker is loaded to
the finalized store (what the progress bar shows); "wall tok/s" includes starting the workers and
loading the model, which dominates short runs. A one-entry --devices runs in-process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.runner import run_collect
from zipfstage.config import CollectSettings


def measure(settings: CollectSettings, root: Path) -> tuple[float, float, int]:
    """(collect seconds, wall seconds, tokens) for one fresh run."""
    out = Path(tempfile.mkdtemp(dir=root))
    started = time.perf_counter()
    outcome = run_collect(settings, out, overwrite=True, quiet=True)
    wall = time.perf_counter() - started
    assert outcome.status == "complete", outcome
    return outcome.seconds, wall, outcome.new_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--points", default="embed,middle,last")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu", "cpu,cpu"],
        help="configurations to compare, the first is the baseline",
    )
    args = parser.parse_args()
    hide_transformers_progress()  # an entry point: its output is the table below
    configs = {name: name.split(",") for name in args.devices}
    totals = {name: [0.0, 0.0, 0] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, devices in configs.items():
                settings = CollectSettings(
                    model=args.model,
                    max_tokens=args.tokens,
                    seq_len=args.seq_len,
                    batch_size=args.batch_size,
                    points=args.points.split(","),
                    devices=devices,
                )
                seconds, wall, tokens = measure(settings, Path(tmp))
                totals[name][0] += seconds
                totals[name][1] += wall
                totals[name][2] += tokens
    print(
        f"model {args.model}, {args.tokens} tokens x {args.repeats} repeats, seq_len "
        f"{args.seq_len}, batch {args.batch_size}, points {args.points}; "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads in the parent"
    )
    print(f"{'devices':24s} {'collect tok/s':>14s} {'wall tok/s':>11s} {'ratio':>6s}")
    base = None
    for name, (seconds, wall, tokens) in totals.items():
        rate = tokens / seconds
        base = base or rate
        print(f"{name:24s} {rate:14,.0f} {tokens / wall:11,.0f} {rate / base:6.2f}")


if __name__ == "__main__":
    main()

"""The headless forward with glibc's default malloc against collect's `keep_freed_memory`.

    python benchmarks/bench_host_memory.py [--model demo] [--tokens 8192] [--repeats 3]

Each measurement is a fresh process (allocator settings are per process and cannot be undone),
alternating default and kept, so drift on a shared machine hits both alike. One line per mode:
`<mode> <tok/s> <ratio to default> faults/batch <minor page faults per batch> peak_rss_mb <MB>`
(the process's peak resident memory: what keeping freed blocks costs).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_collect import time_headless

from zipfstage.collect.host_memory import keep_freed_memory
from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import prepare_run
from zipfstage.config import CollectSettings

MODES = ("default", "kept")


def child(mode: str, model: str, tokens: int) -> None:
    """Print `<tok/s> <faults per batch> <peak RSS MB>` of the headless forward under `mode`."""
    if mode == "kept":
        assert keep_freed_memory(), "glibc's mallopt is not available here"
    hide_transformers_progress()
    settings = CollectSettings(model=model, max_tokens=tokens, compact=False)
    with tempfile.TemporaryDirectory() as tmp:
        run = prepare_run(settings, Path(tmp), place(settings))
        time_headless(run)  # warm-up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        wall, _, n = time_headless(run)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    batches = n / (settings.batch_size * settings.seq_len)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"{n / wall:.1f} {faults / batches:.0f} {peak_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.tokens)
        return
    results: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            command = [sys.executable, __file__, "--child", mode, "--model", args.model]
            command += ["--tokens", str(args.tokens)]
            line = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rate, faults, peak = line.split()[-3:]
            results[mode].append((float(rate), float(faults), float(peak)))
    print(f"# model {args.model}, {args.tokens} tokens, {args.repeats} processes per mode")
    print("# <mode> <tok/s> <ratio to default> faults/batch <per batch> peak_rss_mb <MB>")
    pairs = zip(results["kept"], results["default"], strict=True)
    ratios = [kept[0] / default[0] for kept, default in pairs]
    for mode in MODES:
        rate = statistics.median(r for r, _, _ in results[mode])
        ratio = 1.0 if mode == "default" else statistics.median(ratios)
        faults = statistics.median(f for _, f, _ in results[mode])
        peak = statistics.median(p for _, _, p in results[mode])
        print(f"{mode} {rate:.0f} {ratio:.3f} faults/batch {faults:.0f} peak_rss_mb {peak:.0f}")


if __name__ == "__main__":
    main()

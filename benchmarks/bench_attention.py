"""Cost of the attn site: attn + resid_post at three layers against resid_post alone at the same
three layers, same process, interleaved repeats (resid_post, attn + resid_post, resid_post, ...).

    python benchmarks/bench_attention.py [--model demo] [--tokens 4096] [--repeats 5]

The forward pass is the same in both modes (the hooks stop at the same place); the difference is
the recomputed attention rows (a [heads, block, T] softmax per query block) and the five
[tokens, heads] arrays per layer. Reports tokens/s by wall clock, and per repeat the ratio of the
two modes by wall clock and by process CPU time (the shared machine's load skews wall time):
median and range over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from bench_collect import (  # the same measurement, run from benchmarks/
    run_arguments,
    run_settings,
    time_collect,
)
from bench_sites import with_sites

from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import prepare_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    run_arguments(parser, tokens=4096, repeats=5)
    args = parser.parse_args()
    hide_transformers_progress()  # an entry point: its output is the table below
    settings = run_settings(args, sites=["attn", "resid_post"])
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare_run(settings, Path(tmp), place(settings))
        baseline, attn = with_sites(base, ["resid_post"]), with_sites(base, ["attn", "resid_post"])
        time_collect(attn, Path(tmp) / "warm")
        rows: list[tuple[tuple[float, float, int], tuple[float, float, int]]] = []
        for repeat in range(args.repeats):
            first = time_collect(baseline, Path(tmp) / f"b{repeat}")
            second = time_collect(attn, Path(tmp) / f"a{repeat}")
            rows.append((first, second))
    print(
        f"model {args.model} on {base.loaded.device}, {torch.get_num_threads()} threads, "
        f"{args.tokens} tokens x {args.repeats} repeats, seq_len {args.seq_len}, "
        f"batch {args.batch_size}"
    )
    for label, index in (("wall", 0), ("CPU", 1)):
        ratios = [b[index] / a[index] for a, b in rows]
        each = ", ".join(f"{r:.3f}" for r in ratios)
        print(
            f"cost ({label}): median {statistics.median(ratios):.3f}, "
            f"range {min(ratios):.3f} - {max(ratios):.3f}  ({each})"
        )
    for name, which in (("resid_post x3", 0), ("attn + resid_post x3", 1)):
        wall = sum(row[which][0] for row in rows)
        tokens = sum(row[which][2] for row in rows)
        print(f"{name:22s} {tokens / wall:9,.0f} tok/s (wall)")


if __name__ == "__main__":
    main()

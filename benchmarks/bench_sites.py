"""Cost of sub-layer sites: all five sites at three layers against resid_post alone at the same
three layers, same process, interleaved repeats (resid_post, all sites, resid_post, ...).

    python benchmarks/bench_sites.py [--model demo] [--tokens 4096] [--repeats 3] [--device cpu]

Reports tokens/s by wall clock and by process CPU time (the shared machine's load skews wall
time), and the ratio of the two modes (the issue's budget: all sites cost at most 15 % more).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from bench_collect import (  # the same measurement, run from benchmarks/
    run_arguments,
    run_settings,
    time_collect,
)

from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import (
    PreparedRun,
    prepare_run,
)
from zipfstage.collect.points import resolve_points
from zipfstage.point_names import SITES

LAYERS = ["first", "middle", "last"]


def with_sites(base: PreparedRun, sites: list[str]) -> PreparedRun:
    """The same run at other points (and their channel samples), without reloading the model."""
    return base.at_points(resolve_points(LAYERS, base.loaded.architecture.n_layers, sites))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    run_arguments(parser, tokens=4096, repeats=3)
    args = parser.parse_args()
    hide_transformers_progress()  # an entry point: its output is the table below
    settings = run_settings(args)
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare_run(settings, Path(tmp), place(settings))
        modes = {
            "resid_post at first,middle,last": with_sites(base, ["resid_post"]),
            "all 5 sites at first,middle,last": with_sites(base, list(SITES)),
        }
        time_collect(modes["resid_post at first,middle,last"], Path(tmp) / "warm")
        totals = {name: [0.0, 0.0, 0] for name in modes}
        for _ in range(args.repeats):
            for index, (name, run) in enumerate(modes.items()):
                wall, cpu, tokens = time_collect(run, Path(tmp) / str(index))
                totals[name][0] += wall
                totals[name][1] += cpu
                totals[name][2] += tokens
    print(
        f"model {args.model} on {base.loaded.device}, {torch.get_num_threads()} threads, "
        f"{args.tokens} tokens x {args.repeats} repeats, seq_len {args.seq_len}, "
        f"batch {args.batch_size}"
    )
    baseline_wall, baseline_cpu = (totals[next(iter(totals))][i] for i in (0, 1))
    print(f"{'mode':34s} {'tok/s wall':>11s} {'cost wall':>10s} {'cost CPU':>9s}")
    for name, (wall, cpu, tokens) in totals.items():
        print(
            f"{name:34s} {tokens / wall:11,.0f} {wall / baseline_wall:10.3f} "
            f"{cpu / baseline_cpu:9.3f}"
        )


if __name__ == "__main__":
    main()

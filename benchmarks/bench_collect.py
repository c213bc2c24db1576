"""Collect throughput against the headless forward `model.base_model(ids)` (same batches, process).

    python benchmarks/bench_collect.py [--model demo] [--tokens 8192] [--seq-len 256] [--repeats 2]
        [--device cuda] [--compile] [--modes headless,three,three-notopk,all] [--sites all]

The baseline is the backbone over every layer without the LM head: the head is work collect rightly
skips, not overhead it pays for. Modes run interleaved (headless, 3 points, ...) so drift on a
shared machine hits all of them alike. One line per mode: `<mode> <tok/s> <ratio>`, the ratio to
the headless forward (>1 means faster), then `cpu` and the same ratio by process CPU time (less
sensitive to other jobs on a shared machine). `three-notopk` is the 3-point mode with --topk 0, so
its ratio to `three` is the price of the top-k family. `--compile` runs collect's per-width
reduction on the device through `torch.compile` (the GPU path; on a CPU the numba kernels reduce
and it changes nothing); the forward stays eager in every mode. (Compiling the backbone does not
measure collect: compiled before the hooks exist, it ignores them, since torch.compile skips hook
guards by default, so collect computes nothing; compiled after them, every hook is a graph
break.) Every collect mode is checked to have written finite metrics for each of its points and
tokens, so a mode that computes nothing fails instead of printing ~1.0. On a CPU, collect keeps
freed host memory mapped (`collect/host_memory.py`); the benchmark does so before anything runs,
so the baseline forward runs under the same allocator (`bench_host_memory.py` measures what that
alone gives). `--sites all` makes mode `all` every layer at all five sites (with `mlp_act`, d_ff
wide).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zipfstage.collect.coordinator import create_or_check_store
from zipfstage.collect.host_memory import keep_freed_memory
from zipfstage.collect.models import hide_transformers_progress
from zipfstage.collect.placement import place
from zipfstage.collect.plan import PreparedRun, prepare_run
from zipfstage.collect.points import resolve_points, resolve_sites
from zipfstage.collect.worker import collect_batches
from zipfstage.config import CollectSettings
from zipfstage.store import StoreWriter, open_store, store_path

MODES = ("headless", "three", "three-notopk", "all")


def synchronize(run: PreparedRun) -> None:
    if run.loaded.device.type == "cuda":
        torch.cuda.synchronize(run.loaded.device)


def time_headless(run: PreparedRun) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, tokens) of the backbone over every batch."""
    backbone, device = run.loaded.architecture.backbone, run.loaded.device
    tokens, started, cpu = 0, time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for batch in run.batches():
            backbone(input_ids=torch.from_numpy(batch).to(device), use_cache=False)
            tokens += batch.size
    synchronize(run)
    return time.perf_counter() - started, time.process_time() - cpu, tokens


def time_collect(
    run: PreparedRun, out: Path, compiled: bool = False, check: bool = True
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, tokens) of one full collect into a fresh store, checked to
    hold metrics (`check`; a store written without its checksums cannot be read back)."""
    out.mkdir(parents=True, exist_ok=True)
    create_or_check_store(run.spec(), out, overwrite=True)
    writer = StoreWriter(store_path(out))
    tokens = 0

    def advance(amount: float = 1) -> None:
        nonlocal tokens
        tokens += int(amount)

    wall, cpu = time.perf_counter(), time.process_time()
    collect_batches(run, writer, advance, lambda: False, compile_reduction=compiled)
    synchronize(run)
    timing = (time.perf_counter() - wall, time.process_time() - cpu, tokens)
    if check:
        assert_metrics_written(run, out, tokens)
    return timing


def assert_metrics_written(run: PreparedRun, out: Path, tokens: int) -> None:
    """Every point's first metric holds a finite value for every token collected."""
    store = open_store(out)
    metric = store.scalar_metrics[0]
    for point in (p for p in run.points if p.name in store.points):  # attn points hold no rms
        values = store.metric(point.name, metric)
        finite = int(np.isfinite(values).sum())
        if tokens == 0 or finite != tokens:
            raise SystemExit(f"{point.name}/{metric}: {finite} finite values for {tokens} tokens")


def build_modes(
    base: PreparedRun, tmp: Path, chosen: list[str], compiled: bool, sites: list[str]
) -> dict[str, Callable[[], tuple[float, float, int]]]:
    """name -> measurement, for the chosen modes; `all` is every layer at `sites`."""
    n_layers = base.loaded.architecture.n_layers
    three = base.at_points(resolve_points(["embed", "middle", "last"], n_layers))
    no_topk = dataclasses.replace(three, settings=base.settings.model_copy(update={"topk": 0}))
    every = base.at_points(resolve_points(["all"], n_layers, resolve_sites(sites)))
    table: dict[str, Callable[[], tuple[float, float, int]]] = {
        "headless": lambda: time_headless(base),
        "three": lambda: time_collect(three, tmp / "three", compiled),
        "three-notopk": lambda: time_collect(no_topk, tmp / "notopk", compiled),
        "all": lambda: time_collect(every, tmp / "all", compiled),
    }
    return {name: table[name] for name in chosen}


def run_arguments(parser: argparse.ArgumentParser, tokens: int, repeats: int) -> None:
    """The run options every collect benchmark takes (model, tokens, shape, repeats, device)."""
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=tokens)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--device", default=None)


def run_settings(args: argparse.Namespace, **extra: Any) -> CollectSettings:
    """CollectSettings from `run_arguments`' options, plus a benchmark's own."""
    return CollectSettings(
        model=args.model,
        max_tokens=args.tokens,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        device=args.device,
        **extra,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    run_arguments(parser, tokens=8192, repeats=2)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile collect's device reduction"
    )
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--sites", default="resid_post", help="sites of mode `all` (e.g. all: 5 per layer)"
    )
    args = parser.parse_args()
    hide_transformers_progress()  # an entry point: its output is the table below
    modes = ["headless", *(m for m in args.modes.split(",") if m != "headless")]
    settings = run_settings(args, dtype=args.dtype, compact=False)
    kept = keep_freed_memory()  # what collect does on a CPU: the baseline gets it too
    with tempfile.TemporaryDirectory() as tmp:
        base = prepare_run(settings, Path(tmp), place(settings))
        sites = args.sites.split(",")
        measures = build_modes(base, Path(tmp), modes, args.compile, sites)
        points_of_all = len(
            resolve_points(["all"], base.loaded.architecture.n_layers, resolve_sites(sites))
        )
        for measure in measures.values():  # warm-up (and compilation) outside the timing
            measure()
        rounds = [
            {name: measure() for name, measure in measures.items()} for _ in range(args.repeats)
        ]
    print(
        f"# model {args.model} on {base.loaded.device} ({base.loaded.dtype}), "
        f"{torch.get_num_threads()} threads, {args.tokens} tokens x {args.repeats} repeats, "
        f"seq_len {args.seq_len}, batch {args.batch_size}, compiled reduction {args.compile}, "
        f"freed memory kept {kept}; mode all: {points_of_all} points at sites {args.sites}"
    )
    print("# <mode> <tok/s> <ratio to headless, wall> <ratio, process CPU time>: medians over")
    print("# repeats of each repeat's own ratio, so load that drifts between repeats cancels")
    for name in measures:
        rate = statistics.median(r[name][2] / r[name][0] for r in rounds)
        wall = statistics.median(speed(r, name, 0) for r in rounds)
        cpu = statistics.median(speed(r, name, 1) for r in rounds)
        print(f"{name} {rate:.0f} {wall:.3f} cpu {cpu:.3f}")


def speed(round_: dict[str, tuple[float, float, int]], name: str, clock: int) -> float:
    """tokens per second of `name` over the headless forward's in the same repeat."""
    mode, headless = round_[name], round_["headless"]
    return (mode[2] / mode[clock]) / (headless[2] / headless[clock])


if __name__ == "__main__":
    main()

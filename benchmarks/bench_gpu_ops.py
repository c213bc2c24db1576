"""PyTorch operations per batch of collect's device (GPU) reduction, counted on the CPU device.

    python benchmarks/bench_gpu_ops.py [--tokens 16] [--widths 2560,9728] [--topk 8]

On a GPU each operation is at least one kernel launch (microseconds, whatever its size), so the
count per batch bounds what the reduction costs next to the forward. This counts them without a
GPU: `TorchDispatchMode` (tests/op_counter.py) over the reducer's torch path (`torch_path=True`,
what runs on a GPU) on the CPU device, for one steady-state batch (the first one sizes the
staging buffers), against the per-point path it replaced (tests/device_reference.py). Shapes are
Qwen3-4B's: 3 points (embed, middle, last) at d_model 2,560, and 181 points (every layer at five
sites: 145 states of width 2,560 and 36 `mlp_act` of 9,728), all 16 metrics, top-8 and 64 sampled
channels per point. The counts do not depend on the token count. `launches` leaves out views.
"""

from __future__ import annotations

import argparse

import torch

from tests.device_reference import old_reduce_to_host
from tests.op_counter import OpCounter
from zipfstage.collect.metrics import ALL_METRICS
from zipfstage.collect.points import Point
from zipfstage.collect.reducer import MetricReducer


def states(
    n_model: int, n_ff: int, widths: tuple[int, int], tokens: int
) -> dict[Point, torch.Tensor]:
    """bf16 states: `n_model` of width d_model, `n_ff` mlp_act states of width d_ff."""
    generator = torch.Generator().manual_seed(0)
    chosen = [Point.at(i) for i in range(n_model)] + [Point.at(i, "mlp_act") for i in range(n_ff)]
    return {
        p: torch.randn(1, tokens, widths[p.site == "mlp_act"], generator=generator).bfloat16()
        for p in chosen
    }


def channels(widths: tuple[int, int]) -> dict[int, list[int]]:
    return {w: list(range(0, w, w // 64))[:64] for w in widths}


def count_new(batch: dict[Point, torch.Tensor], widths: tuple[int, int], topk: int) -> OpCounter:
    reducer = MetricReducer(list(ALL_METRICS), channels(widths), topk=topk, torch_path=True)
    for _ in range(2):  # the first batch sizes the staging buffers
        with OpCounter() as ops:
            for point, hidden in batch.items():
                reducer(point, hidden)
            reducer.to_host()
    return ops


def count_old(batch: dict[Point, torch.Tensor], widths: tuple[int, int], topk: int) -> OpCounter:
    picked = {w: torch.tensor(c) for w, c in channels(widths).items()}
    named = {p.name: h for p, h in batch.items()}
    with OpCounter() as ops:
        old_reduce_to_host(named, list(ALL_METRICS), topk, None, picked)
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--widths", default="2560,9728", help="d_model,d_ff")
    parser.add_argument("--topk", type=int, default=8)
    args = parser.parse_args()
    first, second = (int(w) for w in args.widths.split(","))
    widths = (first, second)
    print(f"# ops per batch, widths {first} and {second}, {args.tokens} tokens, top-{args.topk}")
    print("# points widths | before: ops launches | after: ops launches | bound 150w+3p | ratio")
    for n_model, n_ff in ((3, 0), (145, 36)):
        batch = states(n_model, n_ff, widths, args.tokens)
        n_widths = 1 if n_ff == 0 else 2
        old, new = count_old(batch, widths, args.topk), count_new(batch, widths, args.topk)
        bound = 150 * n_widths + 3 * len(batch)
        print(
            f"{len(batch)} {n_widths} | {old.total} {old.launches} | {new.total} {new.launches}"
            f" | {bound} {'ok' if new.total <= bound else 'OVER'} | {old.total / new.total:.1f}x"
        )
        assert new.total <= bound, new.ops.most_common(10)


if __name__ == "__main__":
    main()

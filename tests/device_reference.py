"""The device (GPU) reduction as it was before it was batched by width: one point at a time.

A frozen copy of `HiddenStats` and `top_channels` from zipfstage 9b2d16c with their CPU branches
removed, so it runs the GPU's torch ops on any device. It is the reference the batched path is
held to (every metric within 1e-6 relative, the same top-k channels) and the "before" of the op
counts in `benchmarks/bench_gpu_ops.py`. The metric formulas themselves are shared
(`metrics.METRICS`): only how their intermediates are computed changed.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from zipfstage.collect.metrics import CHANNEL_WISE, METRICS, TOPK_NAMES, hill_order


class OldStats:
    """`metrics.HiddenStats` at 9b2d16c, on the GPU branch whatever the device."""

    def __init__(self, hidden: torch.Tensor, hill_k: int | None, with_order: bool) -> None:
        self.h = hidden.float()
        self.d = self.h.shape[-1]
        self.hill_k = hill_order(self.d, hill_k)
        self.with_order = with_order

    @cached_property
    def abs(self) -> torch.Tensor:
        return self.h.abs()

    @cached_property
    def sq(self) -> torch.Tensor:
        return self.h.square()

    @cached_property
    def sum_sq(self) -> torch.Tensor:
        return self.sq.sum(-1)

    @cached_property
    def sum_fourth(self) -> torch.Tensor:
        return torch.linalg.vecdot(self.sq, self.sq)

    @cached_property
    def l1(self) -> torch.Tensor:
        return self.abs.sum(-1)

    @cached_property
    def max_abs(self) -> torch.Tensor:
        return self.abs.amax(-1)

    @cached_property
    def sorted_abs(self) -> torch.Tensor:
        if self.with_order:
            return self.descending[0].flip(-1)
        return self.abs.sort(-1).values

    @cached_property
    def descending(self) -> tuple[torch.Tensor, torch.Tensor]:
        ordered = torch.sort(self.abs, dim=-1, descending=True, stable=True)
        return ordered.values, ordered.indices

    @cached_property
    def median_abs(self) -> torch.Tensor:
        half = self.d // 2
        if self.d % 2:
            return self.sorted_abs[..., half]
        return 0.5 * (self.sorted_abs[..., half - 1] + self.sorted_abs[..., half])

    @cached_property
    def _central_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        centred_sq = (self.h - self.h.mean(-1, keepdim=True)).square_()
        return centred_sq.mean(-1), torch.linalg.vecdot(centred_sq, centred_sq) / self.d

    @property
    def variance(self) -> torch.Tensor:
        return self._central_moments[0]

    @property
    def fourth_central(self) -> torch.Tensor:
        return self._central_moments[1]

    @cached_property
    def energy_entropy(self) -> torch.Tensor:
        share = self.sq / self.sum_sq.unsqueeze(-1)
        logs = share.clamp_min(torch.finfo(torch.float32).tiny).log_()
        entropy = -torch.linalg.vecdot(share, logs)
        top_share = share.amax(-1)
        total = self.sq.sum(-1, dtype=torch.float64)
        top = self.max_abs.double()
        rest = (total - top.square()).clamp_min(0) / total
        exact = -(1 - rest) * torch.log1p(-rest)
        rounded = -(top_share * top_share.clamp_min(torch.finfo(torch.float32).tiny).log())
        redone = ((entropy - rounded).double() + exact).float()
        return torch.where(top_share > 0.5, redone, entropy)

    @cached_property
    def gini_sum(self) -> torch.Tensor:
        ranks = torch.arange(1, self.d + 1, device=self.h.device, dtype=self.h.dtype)
        return self.sorted_abs @ (2 * ranks - self.d - 1)

    @cached_property
    def hill_reference(self) -> torch.Tensor:
        return self.sorted_abs[..., self.d - self.hill_k - 1]

    @cached_property
    def hill_log_excess(self) -> torch.Tensor:
        top = self.sorted_abs[..., self.d - self.hill_k :]
        return top.log().sum(-1) - self.hill_k * self.hill_reference.log()


def old_top_channels(s: OldStats, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    index = s.descending[1][..., :k]
    signed = s.h.gather(-1, index)
    sign = torch.where(signed < 0, -1, 1).to(torch.int8)
    return signed.abs(), index.to(torch.int32), sign


def old_reduce_point(
    hidden: torch.Tensor,
    names: list[str],
    topk: int,
    hill_k: int | None,
    channels: torch.Tensor | None,
) -> list[tuple[list[str], torch.Tensor]]:
    """One point as `MetricReducer._reduce_on_device` and `_sample_channels` did at 9b2d16c:
    ([metric names], block) with one leading row per name, left on the device."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    k = min(topk, flat.shape[-1])
    stats = OldStats(flat, hill_k, with_order=k > 0)
    blocks: list[tuple[list[str], torch.Tensor]] = []
    scalar_names = [name for name in names if name != CHANNEL_WISE]
    if scalar_names:
        block = torch.stack([METRICS[name](stats).to(torch.float32) for name in scalar_names])
        blocks.append((scalar_names, block))
    if k > 0:
        values, index, signs = old_top_channels(stats, k)
        blocks.append((list(TOPK_NAMES), torch.stack([values, index.float(), signs.float()])))
    if channels is not None:
        blocks.append(([CHANNEL_WISE], flat.index_select(-1, channels).float()[None]))
    return blocks


def old_reduce_to_host(
    states: dict[str, torch.Tensor],
    names: list[str],
    topk: int,
    hill_k: int | None,
    channels: dict[int, torch.Tensor] | None,
) -> dict[tuple[str, str], np.ndarray]:
    """Every point through `old_reduce_point`, then one concatenation and one copy to the host,
    as the old reducer's `to_host` did; {(point, metric): array} with the top-k dtypes."""
    keys: list[tuple[str, str]] = []
    shapes: list[tuple[int, ...]] = []
    tensors: list[torch.Tensor] = []
    for point, hidden in states.items():
        picked = None if channels is None else channels[hidden.shape[-1]]
        for block_names, block in old_reduce_point(hidden, names, topk, hill_k, picked):
            keys.extend((point, name) for name in block_names)
            shapes.extend([tuple(block.shape[1:])] * len(block_names))
            tensors.append(block.reshape(-1))
    flat = torch.cat(tensors).cpu().numpy()
    dtypes = dict(zip(TOPK_NAMES, (np.float32, np.int32, np.int8), strict=True))
    results: dict[tuple[str, str], np.ndarray] = {}
    offset = 0
    for key, shape in zip(keys, shapes, strict=True):
        size = int(np.prod(shape))
        results[key] = (
            flat[offset : offset + size].reshape(shape).astype(dtypes.get(key[1], np.float32))
        )
        offset += size
    return results

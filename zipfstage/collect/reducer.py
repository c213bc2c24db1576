"""Hidden states to per-token metrics on the device, brought to the host once per batch.

Nothing in a hook synchronises with the GPU: results stay on the device until `to_host`, which
makes one transfer per batch for all points and metrics together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from zipfstage.collect.metrics import CHANNEL_WISE, compute_scalars
from zipfstage.collect.points import Point

Key = tuple[str, str]


class MetricReducer:
    """Accumulates one batch's metrics per point; `to_host` returns {(point, metric): array}."""

    def __init__(
        self, metrics: list[str], channel_indices: Sequence[int] | Mapping[int, Sequence[int]]
    ) -> None:
        """`channel_indices`: one list for every point, or one per vector width (d_model, d_ff)."""
        self.scalar_metrics = [m for m in metrics if m != CHANNEL_WISE]
        self.channel_wise = CHANNEL_WISE in metrics
        self.channel_indices = channel_indices
        self._channels: dict[int, torch.Tensor] = {}
        self._scalars: list[tuple[Point, torch.Tensor]] = []
        self._sampled: list[tuple[Point, torch.Tensor]] = []

    def __call__(self, point: Point, hidden: torch.Tensor) -> None:
        flat = hidden.reshape(-1, hidden.shape[-1])
        if self.scalar_metrics:
            self._scalars.append((point, compute_scalars(flat, self.scalar_metrics)))
        if self.channel_wise:
            channels = self._channels_for(flat)
            self._sampled.append((point, flat.index_select(-1, channels).float()))

    def _channels_for(self, flat: torch.Tensor) -> torch.Tensor:
        width = flat.shape[-1]
        cached = self._channels.get(width)
        if cached is None or cached.device != flat.device:
            indices = self.channel_indices
            chosen = indices[width] if isinstance(indices, Mapping) else indices
            cached = self._channels[width] = torch.tensor(list(chosen), device=flat.device)
        return cached

    def to_host(self) -> dict[Key, np.ndarray]:
        """Move everything gathered for this batch to numpy, and reset for the next batch."""
        results: dict[Key, np.ndarray] = {}
        if self._scalars:
            stacked = _stack_on_one_device([values for _, values in self._scalars])
            for (point, _), block in zip(self._scalars, stacked, strict=True):
                for name, row in zip(self.scalar_metrics, block, strict=True):
                    results[(point.name, name)] = row
        if self._sampled:
            # points of different widths may sample different counts: one copy, then split
            widths = [values.shape[-1] for _, values in self._sampled]
            joined = _concat_on_one_device([values for _, values in self._sampled])
            blocks = np.split(joined, np.cumsum(widths)[:-1], axis=-1)
            for (point, _), block in zip(self._sampled, blocks, strict=True):
                results[(point.name, CHANNEL_WISE)] = block
        self._scalars.clear()
        self._sampled.clear()
        return results


def _stack_on_one_device(tensors: list[torch.Tensor]) -> np.ndarray:
    """One device-to-host copy; a sharded model may leave points on different devices."""
    target = tensors[0].device
    return torch.stack([t.to(target) for t in tensors]).cpu().numpy()


def _concat_on_one_device(tensors: list[torch.Tensor]) -> np.ndarray:
    """[tokens, sum of widths] in one device-to-host copy."""
    target = tensors[0].device
    return torch.cat([t.to(target) for t in tensors], dim=-1).cpu().numpy()

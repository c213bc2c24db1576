"""Hidden states to per-token metrics on the device, brought to the host once per batch.

Nothing in a hook synchronises with the GPU: results stay on the device until `to_host`, which
flattens every point's results (scalars, top-k, sampled channels) into one float32 buffer and
makes one transfer per batch for all of them together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from zipfstage.collect.metrics import (
    CHANNEL_WISE,
    TOPK_NAMES,
    HiddenStats,
    scalars_of,
    top_channels,
)
from zipfstage.collect.points import Point

Key = tuple[str, str]
#: host dtypes of the top-k arrays (they travel as float32: channel indices < 2**24 are exact)
_TOPK_DTYPES: tuple[type[np.generic], ...] = (np.float32, np.int32, np.int8)


@dataclass(frozen=True)
class _Piece:
    """Where one (point, metric) array sits in the batch's flat buffer."""

    key: Key
    shape: tuple[int, ...]
    dtype: type[np.generic] = np.float32


class MetricReducer:
    """Accumulates one batch's metrics per point; `to_host` returns {(point, metric): array}.

    `topk` > 0 adds the top-k family (clamped to each point's width); `hill_k` is hill_tail's k_h.
    `channel_indices` is one list for every point, or one per vector width (d_model, d_ff).
    """

    def __init__(
        self,
        metrics: list[str],
        channel_indices: Sequence[int] | Mapping[int, Sequence[int]],
        topk: int = 0,
        hill_k: int | None = None,
    ) -> None:
        self.scalar_metrics = [m for m in metrics if m != CHANNEL_WISE]
        self.channel_wise = CHANNEL_WISE in metrics
        self.channel_indices = channel_indices
        self.topk = topk
        self.hill_k = hill_k
        self._channels: dict[int, torch.Tensor] = {}
        self._tensors: list[torch.Tensor] = []
        self._pieces: list[_Piece] = []

    def __call__(self, point: Point, hidden: torch.Tensor) -> None:
        flat = hidden.reshape(-1, hidden.shape[-1])
        k = min(self.topk, flat.shape[-1])
        stats = HiddenStats(flat, self.hill_k, with_order=k > 0)
        rows = flat.shape[0]
        if self.scalar_metrics:
            self._add(
                scalars_of(stats, self.scalar_metrics),
                [_Piece((point.name, name), (rows,)) for name in self.scalar_metrics],
            )
        if k > 0:
            values, channels, signs = top_channels(stats, k)
            self._add(
                torch.stack([values, channels.float(), signs.float()]),
                [
                    _Piece((point.name, name), (rows, k), dtype)
                    for name, dtype in zip(TOPK_NAMES, _TOPK_DTYPES, strict=True)
                ],
            )
        if self.channel_wise:
            sampled = flat.index_select(-1, self._channels_for(flat)).float()
            self._add(sampled, [_Piece((point.name, CHANNEL_WISE), tuple(sampled.shape))])

    def _channels_for(self, flat: torch.Tensor) -> torch.Tensor:
        """The sampled channel indices for this vector width, cached on its device."""
        width = flat.shape[-1]
        cached = self._channels.get(width)
        if cached is None or cached.device != flat.device:
            indices = self.channel_indices
            chosen = indices[width] if isinstance(indices, Mapping) else indices
            cached = self._channels[width] = torch.tensor(list(chosen), device=flat.device)
        return cached

    def _add(self, block: torch.Tensor, pieces: list[_Piece]) -> None:
        self._tensors.append(block.reshape(-1))
        self._pieces.extend(pieces)

    def to_host(self) -> dict[Key, np.ndarray]:
        """Move everything gathered for this batch to numpy, and reset for the next batch."""
        results: dict[Key, np.ndarray] = {}
        if self._tensors:
            flat = _concat_on_one_device(self._tensors)
            offset = 0
            for piece in self._pieces:
                size = int(np.prod(piece.shape))
                part = flat[offset : offset + size].reshape(piece.shape)
                results[piece.key] = part if piece.dtype is np.float32 else part.astype(piece.dtype)
                offset += size
        self._tensors.clear()
        self._pieces.clear()
        return results


def _concat_on_one_device(tensors: list[torch.Tensor]) -> np.ndarray:
    """One device-to-host copy; a sharded model may leave points on different devices."""
    target = tensors[0].device
    return torch.cat([t.to(target) for t in tensors]).cpu().numpy()

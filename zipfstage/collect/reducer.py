"""Hidden states to per-token metrics on the device, brought to the host once per batch.

Nothing in a hook synchronises with the GPU: a hook copies its state into the batch's staging
buffers (`device_reduce`), every width is reduced in one pass over all its points, and results
stay on the device until `to_host`, which flattens them (scalars, top-k, sampled channels) into
one float32 buffer and makes one transfer per batch for all of them together. On a CPU the
compiled kernels of `cpu_reduce` compute the same intermediates straight into host arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from zipfstage.collect.cpu_reduce import CpuReducer, scalars_of_many
from zipfstage.collect.device_reduce import Piece, StagedStates, WidthReduction
from zipfstage.collect.metrics import BUILT_IN, CHANNEL_WISE, TOPK_NAMES, HiddenStats, scalars_of
from zipfstage.collect.points import Point

Key = tuple[str, str]


class MetricReducer:
    """Accumulates one batch's metrics per point; `to_host` returns {(point, metric): array}.

    `topk` > 0 adds the top-k family (clamped to each point's width); `hill_k` is hill_tail's k_h.
    `channel_indices` is one list for every point, or one per vector width (d_model, d_ff).
    `torch_path` reduces CPU states as on a GPU (staged, batched by width, in torch), for tests
    and op counts; `staging_bytes` bounds the staged states (default: 1/32 of the GPU's memory);
    `compile_reduction` runs the device path's per-width reduction through torch.compile.
    """

    def __init__(
        self,
        metrics: list[str],
        channel_indices: Sequence[int] | Mapping[int, Sequence[int]],
        topk: int = 0,
        hill_k: int | None = None,
        *,
        torch_path: bool = False,
        staging_bytes: int | None = None,
        compile_reduction: bool = False,
    ) -> None:
        self.scalar_metrics = [m for m in metrics if m != CHANNEL_WISE]
        self.channel_wise = CHANNEL_WISE in metrics
        self.channel_indices = channel_indices
        self.topk = topk
        self.hill_k = hill_k
        self._channels: dict[int, torch.Tensor] = {}
        self._tensors: list[torch.Tensor] = []
        self._pieces: list[Piece] = []
        #: on a CPU: what the compiled kernels give, and metrics added outside metrics.py
        self._compiled = [name for name in self.scalar_metrics if name in BUILT_IN]
        self._extra = [name for name in self.scalar_metrics if name not in BUILT_IN]
        self._host: dict[Key, np.ndarray] = {}
        self._cpu = CpuReducer()
        self._held = HeldStates()
        self.torch_path = torch_path
        self._staged = StagedStates(staging_bytes)
        channels_for = self._channels_for if self.channel_wise else None
        self._widths = WidthReduction(
            self.scalar_metrics, topk, hill_k, channels_for, compile_reduction
        )

    def __call__(self, point: Point, hidden: torch.Tensor) -> None:
        if hidden.device.type != "cpu" or self.torch_path:
            if self._staged.hold(point, hidden):
                self._reduce_staged()
        elif self._held.hold(point, hidden.reshape(-1, hidden.shape[-1])):
            self._reduce_held()

    def _reduce_staged(self) -> None:
        """Every staged width in one pass of torch operations; results stay on the device."""
        for staged in self._staged.release():
            for block, pieces in self._widths.blocks(staged):
                self._add(block, pieces)

    def _reduce_held(self) -> None:
        """Every held CPU state through the compiled kernels, the formulas once per width."""
        held = self._held.release()
        if not held:
            return
        compiled = self._compiled
        states = [flat for _, flat in held]
        channels = (
            [self._channels_for(flat).numpy() for flat in states] if self.channel_wise else None
        )
        reduced = self._cpu.reduce_many(states, compiled, self.topk, self.hill_k, channels)
        by_width = scalars_of_many([r.stats for r in reduced], compiled) if compiled else []
        for index, ((point, flat), result) in enumerate(zip(held, reduced, strict=True)):
            top = result.top
            values = dict(zip(compiled, by_width[index], strict=True)) if compiled else {}
            if self._extra:  # a metric added outside metrics.py may read all of HiddenStats
                extra = scalars_of(HiddenStats(flat, self.hill_k), self._extra).numpy()
                values.update(zip(self._extra, extra, strict=True))
            for name in self.scalar_metrics:
                self._host[(point.name, name)] = values[name]
            if top.values.shape[1]:
                arrays = (top.values, top.channels, top.signs)
                for name, array in zip(TOPK_NAMES, arrays, strict=True):
                    self._host[(point.name, name)] = array
            if result.sampled is not None:
                self._host[(point.name, CHANNEL_WISE)] = result.sampled

    def _channels_for(self, flat: torch.Tensor) -> torch.Tensor:
        """The sampled channel indices for this vector width, cached on its device."""
        width = flat.shape[-1]
        cached = self._channels.get(width)
        if cached is None or cached.device != flat.device:
            indices = self.channel_indices
            chosen = indices[width] if isinstance(indices, Mapping) else indices
            cached = self._channels[width] = torch.tensor(list(chosen), device=flat.device)
        return cached

    def _add(self, block: torch.Tensor, pieces: list[Piece]) -> None:
        self._tensors.append(block.reshape(-1))
        self._pieces.extend(pieces)

    def to_host(self) -> dict[Key, np.ndarray]:
        """Move everything gathered for this batch to numpy, and reset for the next batch."""
        self._reduce_staged()
        self._reduce_held()
        results, self._host = self._host, {}
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


class HeldStates:
    """CPU hidden states held back (copied, as float32) until the forward pass stops.

    Reducing in each hook makes the reduction's threads race torch's OpenMP threads, which spin
    for a millisecond or more after every operation: measured, a point took 4-7 ms in a hook
    against 2.7 ms after the forward. So hooks only copy (into buffers reused batch to batch)
    and `release` hands the states over once the batch's forward is done, or earlier when
    more than `limit_bytes` are held (a large model at many sites).
    """

    def __init__(self, limit_bytes: int = 512 * 2**20) -> None:
        self.limit_bytes = limit_bytes
        self._held: list[tuple[Point, torch.Tensor]] = []
        self._free: dict[tuple[int, ...], list[torch.Tensor]] = {}

    def hold(self, point: Point, flat: torch.Tensor) -> bool:
        """Copy `flat`; True when the held states now exceed the limit (release them)."""
        spare = self._free.get(tuple(flat.shape))
        buffer = spare.pop() if spare else torch.empty(flat.shape, dtype=torch.float32)
        buffer.copy_(flat)
        self._held.append((point, buffer))
        return sum(held.nbytes for _, held in self._held) > self.limit_bytes

    def release(self) -> list[tuple[Point, torch.Tensor]]:
        """The held states, in hook order; their buffers are reused by the next `hold`s, so
        reduce them before holding more."""
        held, self._held = self._held, []
        for _, buffer in held:
            self._free.setdefault(tuple(buffer.shape), []).append(buffer)
        return held


def _concat_on_one_device(tensors: list[torch.Tensor]) -> np.ndarray:
    """One device-to-host copy; a sharded model may leave points on different devices."""
    target = tensors[0].device
    return torch.cat([t.to(target) for t in tensors]).cpu().numpy()

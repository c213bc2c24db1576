"""Next-token loss of the full model (LM head included) under each intervention, batch by batch:
the baseline and every intervention see the same batches, in the same process.

Per intervention it keeps the summed loss, the loss by position bucket (where in the sequence the
damage falls) and, at every layer it watches, the largest |h| of the massive channels (whether the
model rebuilds the massive activation after it was removed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zipfstage.ablate.hooks import intervening, observers
from zipfstage.ablate.spec import Intervention
from zipfstage.collect.architecture import Architecture

#: first predicted position of each bucket (a token at position p is predicted from 0..p-1)
BUCKET_STARTS = (1, 2, 8, 32, 128, 512)


def bucket_labels(seq_len: int) -> list[str]:
    """'1', '2-7', ..., up to the last predicted position seq_len - 1."""
    starts = [s for s in BUCKET_STARTS if s < seq_len]
    ends = [*(s - 1 for s in starts[1:]), seq_len - 1]
    return [str(a) if a == b else f"{a}-{b}" for a, b in zip(starts, ends, strict=True)]


def position_buckets(seq_len: int) -> np.ndarray:
    """Bucket index of each predicted position 1..seq_len-1."""
    starts = np.array([s for s in BUCKET_STARTS if s < seq_len])
    return np.searchsorted(starts, np.arange(1, seq_len), side="right") - 1


@dataclass(frozen=True)
class Watch:
    """Layers and channels whose largest |h| is recorded under every intervention."""

    layers: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()


@dataclass
class Tally:
    """One intervention's running sums."""

    n_buckets: int
    watch: Watch
    loss_sum: float = 0.0
    count: int = 0
    bucket_sum: np.ndarray = field(init=False)
    bucket_count: np.ndarray = field(init=False)
    massive_max: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bucket_sum = np.zeros(self.n_buckets)
        self.bucket_count = np.zeros(self.n_buckets, dtype=np.int64)
        self.massive_max = np.zeros((len(self.watch.layers), len(self.watch.channels)))

    def add(self, losses: np.ndarray, buckets: np.ndarray) -> None:
        """`losses` [batch, seq_len - 1] in float64."""
        self.loss_sum += float(losses.sum())
        self.count += losses.size
        self.bucket_sum += np.bincount(
            buckets, weights=losses.sum(axis=0), minlength=self.n_buckets
        )
        self.bucket_count += np.bincount(buckets, minlength=self.n_buckets) * losses.shape[0]

    def observe(self, layer: int, hidden: torch.Tensor) -> None:
        row = self.watch.layers.index(layer)
        channels = torch.tensor(self.watch.channels, device=hidden.device)
        peak = hidden[..., channels].abs().float().amax(dim=(0, 1)).cpu().numpy()
        self.massive_max[row] = np.maximum(self.massive_max[row], peak)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    def bucket_losses(self) -> list[float | None]:
        return [
            float(s / n) if n else None
            for s, n in zip(self.bucket_sum, self.bucket_count, strict=True)
        ]


def input_device(model: Any) -> torch.device:
    """Where input ids go: the embedding's device (the first GPU of a sharded model)."""
    return torch.device(model.get_input_embeddings().weight.device)


def token_losses(model: Any, ids: torch.Tensor) -> np.ndarray:
    """Cross-entropy of every next token [batch, seq_len - 1], in float64 on the host."""
    logits = model(input_ids=ids, use_cache=False).logits
    targets = ids[:, 1:].to(logits.device)
    losses = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
    return losses.double().cpu().numpy()


def evaluate(
    model: Any,
    architecture: Architecture,
    batches: Iterable[np.ndarray],
    interventions: list[Intervention],
    watch: Watch,
    advance: Callable[[int], None] | None = None,
) -> list[Tally]:
    """Run every intervention on every batch; `advance(tokens)` after each forward pass."""
    tallies: list[Tally] = []
    device = input_device(model)
    for batch in batches:
        ids = torch.as_tensor(batch, dtype=torch.long, device=device)
        buckets = position_buckets(ids.shape[1])
        if not tallies:
            tallies = [Tally(int(buckets.max()) + 1, watch) for _ in interventions]
        for tally, intervention in zip(tallies, interventions, strict=True):
            with (
                intervening(architecture, intervention),
                observers(architecture, list(watch.layers), tally.observe),
                torch.inference_mode(),
            ):
                losses = token_losses(model, ids)
            tally.add(losses, buckets)
            if advance:
                advance(ids.numel())
    return tallies

"""The replacement values of `mean`, `typical` and `clamp`, from collect's own data (the collected
batches, never the eval text).

- The store's top-k arrays hold each token's k largest |h| with channel and sign. Where every token
  an edit selects has the channel among its top-k (the massive channel on the tokens that carry
  it), the mean of the stored signed values is exact: `stored_mean` uses it.
- Anything else (the mean over the tokens that do not carry the channel, a quantile for `clamp`,
  the random control channels, a layer the run did not collect) is not in the store: `calibrate`
  runs the model over the first collected batches again (the same packed text, checked against
  the stored token ids) and reads the exact channel values at the edited layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from zipfstage.ablate.hooks import observers, token_mask
from zipfstage.ablate.spec import TokenRule
from zipfstage.collect.architecture import Architecture
from zipfstage.collect.hooks import StopForward
from zipfstage.outliers.source import iter_chunks, topk_points
from zipfstage.point_names import point_name
from zipfstage.store.reader import StoreReader

NeedKey = tuple[int, tuple[int, ...], TokenRule]


@dataclass
class ChannelStats:
    """Channel values at one layer over the calibration tokens, and which tokens the rule picks."""

    values: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def add(self, values: np.ndarray, mask: np.ndarray) -> None:
        self.values.append(values)
        self.masks.append(mask)

    def _stacked(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.values), np.concatenate(self.masks)

    def selected_mean(self) -> tuple[np.ndarray, int]:
        """Mean value of each channel over the selected tokens, and how many there were."""
        values, mask = self._stacked()
        return _mean(values[mask]), int(mask.sum())

    def typical(self) -> tuple[np.ndarray, int]:
        """Mean over the tokens the rule does not select (all tokens when it selects all)."""
        values, mask = self._stacked()
        rest = values if mask.all() else values[~mask]
        return _mean(rest), len(rest)

    def abs_quantile(self, q: float) -> tuple[np.ndarray, int]:
        values, _ = self._stacked()
        return np.quantile(np.abs(values), q, axis=0), len(values)


def _mean(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.full(values.shape[1], np.nan)
    return values.mean(axis=0)


def calibrate(
    model: Any,
    architecture: Architecture,
    batches: Iterable[np.ndarray],
    needs: list[NeedKey],
) -> dict[NeedKey, ChannelStats]:
    """Exact channel values at the needed (layer, channels, rule) over the calibration batches.

    Read-only hooks; the forward pass stops after the deepest needed block.
    """
    stats = {need: ChannelStats() for need in needs}
    if not needs:
        return stats
    layers = sorted({need[0] for need in needs})
    deepest = layers[-1]

    def observe(layer: int, hidden: torch.Tensor) -> None:
        for need in needs:
            if need[0] == layer:
                channels = torch.tensor(need[1], device=hidden.device)
                values = hidden[..., channels].double().cpu().numpy()
                mask = token_mask(hidden, need[2]).cpu().numpy()
                stats[need].add(values.reshape(-1, len(need[1])), mask.reshape(-1))
        if layer == deepest:
            raise StopForward

    device = model.get_input_embeddings().weight.device
    with observers(architecture, layers, observe), torch.inference_mode():
        for batch in batches:
            with contextlib.suppress(StopForward):
                model.base_model(input_ids=torch.as_tensor(batch, device=device), use_cache=False)
    return stats


def stored_mean(
    reader: StoreReader, layer: int, channels: tuple[int, ...], rule: TokenRule
) -> tuple[np.ndarray, int] | None:
    """The mean signed value of each channel over the selected tokens, from the top-k arrays of
    block `layer`'s output; None unless every selected token has every channel in its top-k."""
    name = point_name(layer)
    if name not in {info.name for info in topk_points(reader)}:
        return None
    sums, count = np.zeros(len(channels)), 0
    for chunk in iter_chunks(reader, name):
        signed = chunk.abs * chunk.sign
        if rule.kind == "first":
            selected = chunk.positions == 0
        elif rule.kind == "all":
            selected = np.ones(len(chunk.rows), dtype=bool)
        else:
            carrying = np.isin(chunk.channel, rule.carrier_channels) & (chunk.abs >= rule.threshold)
            selected = carrying.any(axis=1)
        for i, channel in enumerate(channels):
            hit = chunk.channel[selected] == channel
            if not hit.any(axis=1).all():
                return None
            sums[i] += signed[selected][hit].sum()
        count += int(selected.sum())
    if count == 0:
        return None
    return sums / count, count

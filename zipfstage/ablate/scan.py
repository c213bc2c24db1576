"""Find the first massive layer on a few eval batches, for runs that did not collect every block
output: the outlier analysis's criterion (Sun et al.), with its median estimator
(`outliers.sun.global_median` over per-token medians), on every block output."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from zipfstage.ablate.hooks import observers
from zipfstage.ablate.massive import massive_channels
from zipfstage.ablate.targets import Massive
from zipfstage.collect.architecture import Architecture
from zipfstage.outliers.sun import global_median


def scan_massive(
    model: Any,
    architecture: Architecture,
    batches: Iterable[np.ndarray],
    thresholds: tuple[float, float],
) -> Massive | None:
    """The first block whose output meets Sun's criterion, its channels and largest value.

    `thresholds`: (sun_abs, sun_ratio) from the outlier analysis's settings.
    """
    n_layers = architecture.n_layers
    maxima = np.zeros((n_layers, architecture.hidden_size))
    medians: list[list[np.ndarray]] = [[] for _ in range(n_layers)]

    def observe(layer: int, hidden: torch.Tensor) -> None:
        magnitude = hidden.detach().abs().float()
        maxima[layer] = np.maximum(maxima[layer], magnitude.amax(dim=(0, 1)).cpu().numpy())
        ordered = magnitude.sort(dim=-1).values  # the median of an even count: collect's
        width = ordered.shape[-1]  # average of the two middle values
        median = 0.5 * (ordered[..., (width - 1) // 2] + ordered[..., width // 2])
        medians[layer].append(median.reshape(-1).cpu().numpy())

    device = model.get_input_embeddings().weight.device
    tokens = 0
    with observers(architecture, list(range(n_layers)), observe), torch.inference_mode():
        for batch in batches:
            model.base_model(input_ids=torch.as_tensor(batch, device=device), use_cache=False)
            tokens += int(np.asarray(batch).size)
    for layer in range(n_layers):
        median = global_median(np.concatenate(medians[layer])) if medians[layer] else None
        channels = massive_channels(maxima[layer], float(median or 0.0), *thresholds)
        if channels and median is not None and median > 0:
            value = float(maxima[layer, channels[0]])
            return Massive(layer, tuple(channels), value, f"found on {tokens:,} eval tokens")
    return None

"""Each metric against an independent numpy reference, and degenerate vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zipfstage.collect.metrics import (
    ALL_METRICS,
    CHANNEL_WISE,
    METRICS,
    compute_scalars,
    resolve_metrics,
)
from zipfstage.errors import ZipfstageError


def reference(name: str, h: np.ndarray) -> np.ndarray:
    """Straight from the definitions, in float64, one token per row."""
    a = np.abs(h)
    sq = h**2
    d = h.shape[-1]
    if name == "rms":
        return np.sqrt(np.mean(sq, -1))
    if name == "l2_norm":
        return np.linalg.norm(h, axis=-1)
    if name == "l1_norm":
        return a.sum(-1)
    if name == "max_abs":
        return a.max(-1)
    if name == "mean_abs":
        return a.mean(-1)
    if name == "std":
        return h.std(-1, ddof=0)
    if name == "kurtosis":
        import scipy.stats

        return scipy.stats.kurtosis(h, axis=-1, fisher=False, bias=True)
    if name == "max_to_median":
        return a.max(-1) / np.median(a, -1)
    if name == "crest":
        return a.max(-1) / np.sqrt(np.mean(sq, -1))
    if name == "participation_ratio":
        return sq.sum(-1) ** 2 / (sq**2).sum(-1)
    if name == "entropy":
        import scipy.stats

        return scipy.stats.entropy(sq, axis=-1)
    if name == "gini":
        out = []
        for row in a:
            diffs = np.abs(row[:, None] - row[None, :]).sum()
            out.append(diffs / (2 * d * row.sum()))
        return np.array(out)
    if name == "top1_share":
        return sq.max(-1) / sq.sum(-1)
    if name == "hoyer":
        return (np.sqrt(d) - a.sum(-1) / np.linalg.norm(h, axis=-1)) / (np.sqrt(d) - 1)
    raise KeyError(name)


@pytest.mark.parametrize("d", [63, 64])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_numpy(name: str, d: int) -> None:
    rng = np.random.default_rng(d)
    h = rng.standard_t(3, size=(40, d)) * rng.uniform(0.1, 10, size=(40, 1))
    h[0, 5] = 300.0  # a massive activation
    ours = compute_scalars(torch.tensor(h, dtype=torch.float32), [name])[0].numpy()
    np.testing.assert_allclose(ours, reference(name, h), rtol=2e-4, atol=1e-5)


def test_metrics_run_on_bfloat16_input_in_float32() -> None:
    h = torch.randn(8, 32).to(torch.bfloat16)
    ours = compute_scalars(h, ["kurtosis"])[0]
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference("kurtosis", h.float().numpy()), rtol=1e-4)


def test_zero_vector_gives_nan_for_ratios_and_zero_for_norms() -> None:
    h = torch.zeros(3, 16)
    h[1] = torch.arange(16.0)
    values = dict(zip(sorted(METRICS), compute_scalars(h, sorted(METRICS)), strict=True))
    for name in ("rms", "l2_norm", "l1_norm", "max_abs", "mean_abs", "std"):
        assert values[name][0] == 0
    for name in (
        "kurtosis",
        "max_to_median",
        "crest",
        "participation_ratio",
        "entropy",
        "gini",
        "top1_share",
        "hoyer",
    ):
        assert torch.isnan(values[name][0]), name
        assert torch.isfinite(values[name][1]), name


def test_one_hot_vector_extremes() -> None:
    h = torch.zeros(1, 10)
    h[0, 3] = -2.0
    names = ["participation_ratio", "entropy", "top1_share", "hoyer", "gini"]
    values = dict(zip(names, compute_scalars(h, names)[:, 0].tolist(), strict=True))
    assert values == pytest.approx(
        {"participation_ratio": 1.0, "entropy": 0.0, "top1_share": 1.0, "hoyer": 1.0, "gini": 0.9}
    )


def test_resolve_metrics() -> None:
    assert resolve_metrics(["all"]) == list(ALL_METRICS)
    assert resolve_metrics(["gini", "rms", CHANNEL_WISE]) == ["rms", "gini", CHANNEL_WISE]
    with pytest.raises(ZipfstageError, match="unknown metric kurt"):
        resolve_metrics(["kurt"])

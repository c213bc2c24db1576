"""Each metric against an independent numpy reference, and degenerate vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zipfstage.collect.cpu_kernels import _log_float32
from zipfstage.collect.cpu_reduce import CpuReducer
from zipfstage.collect.metrics import (
    ALL_METRICS,
    CHANNEL_WISE,
    METRICS,
    HiddenStats,
    compute_scalars,
    hill_order,
    resolve_metrics,
    scalars_of,
    top_channels,
)
from zipfstage.errors import ZipfstageError

#: the two producers of the intermediates: torch (the GPU path) and the compiled CPU kernels
PRODUCERS = ["torch", "cpu-kernels"]


def scalars(
    h: torch.Tensor, names: list[str], producer: str, hill_k: int | None = None
) -> torch.Tensor:
    """[names, tokens] float32 through one producer (one thread and two for the kernels)."""
    if producer == "torch":
        return compute_scalars(h, names, hill_k)
    one, two = (
        scalars_of(CpuReducer(threads).reduce(h, names, 0, hill_k).stats, names)
        for threads in (1, 2)
    )
    torch.testing.assert_close(one, two, rtol=0, atol=0, equal_nan=True)  # rows split alike
    return one


def top_k(h: np.ndarray, k: int, producer: str) -> tuple[np.ndarray, ...]:
    if producer == "torch":
        return tuple(t.numpy() for t in top_channels(HiddenStats(torch.from_numpy(h)), k))
    top = CpuReducer().reduce(torch.from_numpy(h), [], topk=k).top
    return top.values, top.channels, top.signs


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
    if name == "median_abs":
        return np.median(a, -1)
    if name == "hill_tail":
        return hill_reference(a, max(10, d // 100))
    raise KeyError(name)


def hill_reference(a: np.ndarray, k: int) -> np.ndarray:
    """alpha = k / sum_{i<=k} log(x_(i) / x_(k+1)), x descending; NaN where undefined."""
    out = np.full(len(a), np.nan)
    for r, row in enumerate(a):
        x = sorted(row.tolist(), reverse=True)
        if x[k] > 0:
            total = sum(np.log(x[i] / x[k]) for i in range(k))
            out[r] = k / total if total > 0 else np.nan
    return out


def topk_reference(h: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Descending |h|, ties by lowest channel: a stable sort of -|h| in float64."""
    order = np.argsort(-np.abs(h), axis=-1, kind="stable")[:, :k]
    chosen = np.take_along_axis(h, order, -1)
    return np.abs(chosen), order, np.where(chosen < 0, -1, 1)


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("d", [63, 64])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_numpy(name: str, d: int, producer: str) -> None:
    rng = np.random.default_rng(d)
    h = rng.standard_t(3, size=(40, d)) * rng.uniform(0.1, 10, size=(40, 1))
    h[0, 5] = 300.0  # a massive activation
    ours = scalars(torch.tensor(h, dtype=torch.float32), [name], producer)[0].numpy()
    np.testing.assert_allclose(ours, reference(name, h), rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_entropy_of_a_massive_activation_keeps_its_digits(producer: str) -> None:
    """One channel holding all but 1e-6 of the energy: float32 shares round it to 1 - 6e-8."""
    h = np.random.default_rng(3).normal(size=(4, 576))
    h[:, 7] = [2.5e4, -3e4, 1e3, 5e2]
    ours = scalars(torch.tensor(h, dtype=torch.float32), ["entropy"], producer)[0].numpy()
    expected = reference("entropy", h.astype(np.float32).astype(np.float64))
    assert expected[0] < 2e-4  # the regime that matters: a tiny entropy
    np.testing.assert_allclose(ours, expected, rtol=2e-5)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_a_row_with_nan_gives_nan_and_leaves_other_rows_alone(producer: str) -> None:
    h = np.random.default_rng(4).normal(size=(3, 40)).astype(np.float32)
    h[1, 9] = np.nan
    values = scalars(torch.from_numpy(h), sorted(METRICS), producer).numpy()
    clean = scalars(torch.from_numpy(h[[0, 2]]), sorted(METRICS), producer).numpy()
    np.testing.assert_array_equal(values[:, [0, 2]], clean)
    l1 = sorted(METRICS).index("l1_norm")
    assert np.isnan(values[l1, 1]) and np.isnan(values[sorted(METRICS).index("max_abs"), 1])
    _, channels, _ = top_k(h, 8, producer)
    assert ((channels >= 0) & (channels < 40)).all()
    assert len(set(channels[1].tolist())) == 8  # distinct channels even with NaN


def test_float32_log_is_within_two_ulp_of_numpy() -> None:
    x = np.geomspace(np.finfo(np.float32).tiny, 1, 200_001).astype(np.float32)
    near_one = np.float32(1) - np.arange(1, 2000, dtype=np.float32) * np.float32(6e-8)
    x = np.concatenate([x, near_one, np.zeros(1, np.float32)])
    assert x.dtype == np.float32
    logs = np.empty_like(x)
    _log_float32(x.copy(), np.empty(x.size, np.int32), logs)
    expected = np.log(np.maximum(x, np.finfo(np.float32).tiny).astype(np.float64))
    ulp = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(logs - expected) / np.maximum(ulp, 1e-45)) <= 2


@pytest.mark.parametrize("producer", PRODUCERS)
def test_metrics_run_on_bfloat16_input_in_float32(producer: str) -> None:
    h = torch.randn(8, 32).to(torch.bfloat16)
    ours = scalars(h, ["kurtosis"], producer)[0]
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference("kurtosis", h.float().numpy()), rtol=1e-4)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_zero_vector_gives_nan_for_ratios_and_zero_for_norms(producer: str) -> None:
    h = torch.zeros(3, 16)
    h[1] = torch.arange(16.0)
    values = dict(zip(sorted(METRICS), scalars(h, sorted(METRICS), producer), strict=True))
    for name in ("rms", "l2_norm", "l1_norm", "max_abs", "mean_abs", "std"):
        assert values[name][0] == 0
    assert values["median_abs"][0] == 0
    for name in (
        "hill_tail",
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


@pytest.mark.parametrize("producer", PRODUCERS)
def test_one_hot_vector_extremes(producer: str) -> None:
    h = torch.zeros(1, 10)
    h[0, 3] = -2.0
    names = ["participation_ratio", "entropy", "top1_share", "hoyer", "gini"]
    values = dict(zip(names, scalars(h, names, producer)[:, 0].tolist(), strict=True))
    assert values == pytest.approx(
        {"participation_ratio": 1.0, "entropy": 0.0, "top1_share": 1.0, "hoyer": 1.0, "gini": 0.9}
    )


def test_resolve_metrics() -> None:
    assert resolve_metrics(["all"]) == list(ALL_METRICS)
    assert resolve_metrics(["gini", "rms", CHANNEL_WISE]) == ["rms", "gini", CHANNEL_WISE]
    with pytest.raises(ZipfstageError, match="unknown metric kurt"):
        resolve_metrics(["kurt"])


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("d", [15, 16, 1200])
def test_median_abs_odd_and_even_width(d: int, producer: str) -> None:
    h = np.random.default_rng(d).normal(size=(7, d))
    ours = scalars(torch.tensor(h, dtype=torch.float32), ["median_abs"], producer)[0].numpy()
    np.testing.assert_allclose(ours, np.median(np.abs(h), -1), rtol=1e-5)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_hill_tail_formula_and_its_k(producer: str) -> None:
    rng = np.random.default_rng(1)
    h = rng.pareto(2.0, size=(30, 2500)) + 1  # tail index 2: the estimate lands near it
    a = np.abs(h)
    ours = scalars(torch.tensor(h, dtype=torch.float32), ["hill_tail"], producer)[0].numpy()
    np.testing.assert_allclose(ours, hill_reference(a, 25), rtol=1e-4)  # k_h = 2500 // 100
    assert 1.0 < np.median(ours) < 3.5
    chosen = scalars(torch.tensor(h, dtype=torch.float32), ["hill_tail"], producer, hill_k=40)[0]
    np.testing.assert_allclose(chosen.numpy(), hill_reference(a, 40), rtol=1e-4)
    assert hill_order(64, None) == 10 and hill_order(5000, None) == 50 and hill_order(8, 10) == 7


@pytest.mark.parametrize("producer", PRODUCERS)
def test_hill_tail_nan_where_the_reference_value_is_zero(producer: str) -> None:
    h = torch.zeros(3, 64)
    h[1, :5] = torch.arange(1.0, 6.0)  # x_(11) = 0
    h[2] = 1.0  # every value ties with x_(11): log ratios sum to 0
    assert torch.isnan(scalars(h, ["hill_tail"], producer)[0]).all()


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("k", [1, 8, 64])
def test_top_channels_match_numpy(k: int, producer: str) -> None:
    rng = np.random.default_rng(k)
    h = rng.standard_t(3, size=(50, 64)).astype(np.float32)
    h[0, 17] = -400.0
    values, channels, signs = top_k(h, k, producer)
    ref_values, ref_channels, ref_signs = topk_reference(h, k)
    assert (values.dtype, channels.dtype, signs.dtype) == (np.float32, np.int32, np.int8)
    np.testing.assert_array_equal(channels, ref_channels)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(signs, ref_signs)
    # the GPU path (a stable torch sort) picks the same channels
    by_sort = HiddenStats(torch.from_numpy(h), with_order=True).descending[1][
        :, : channels.shape[1]
    ]
    np.testing.assert_array_equal(by_sort.numpy(), ref_channels)
    assert channels[0, 0] == 17 and signs[0, 0] == -1
    assert np.all(np.diff(values, axis=-1) <= 0)


@pytest.mark.parametrize("producer", PRODUCERS)
def test_top_channels_break_ties_by_lowest_channel(producer: str) -> None:
    h = np.zeros((4, 12), dtype=np.float32)
    h[1] = [1, -3, 3, 0, 2, -2, 3, 0, 0, 0, 0, 0]  # a tie across the k = 4 boundary: -2 and 2
    h[2, [9, 4, 7]] = [-5, 5, 5]  # ties inside the top
    h[3] = np.arange(12) % 3  # many ties
    values, channels, signs = top_k(h, 4, producer)
    ref_values, ref_channels, ref_signs = topk_reference(h, 4)
    np.testing.assert_array_equal(channels, ref_channels)
    assert channels[0].tolist() == [0, 1, 2, 3]  # all-zero: the first channels, sign +1
    assert channels[1].tolist() == [1, 2, 6, 4] and channels[2].tolist()[:3] == [4, 7, 9]
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(signs, ref_signs)
    # the GPU path (a stable torch sort) picks the same channels
    by_sort = HiddenStats(torch.from_numpy(h), with_order=True).descending[1][
        :, : channels.shape[1]
    ]
    np.testing.assert_array_equal(by_sort.numpy(), ref_channels)

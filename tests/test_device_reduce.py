"""The device (GPU) reduction, batched by width, run on the CPU device through the torch path.

Held to the per-point path it replaced (`device_reference.py`, zipfstage 9b2d16c): every metric
within 1e-6 relative, the same top-k channels, signs and values; and to its purpose: the PyTorch
operations per batch grow with the number of widths, not of points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.device_reference import old_reduce_to_host
from tests.op_counter import OpCounter
from zipfstage.collect.device_reduce import StagedStates
from zipfstage.collect.metrics import ALL_METRICS, METRICS
from zipfstage.collect.points import Point
from zipfstage.collect.reducer import MetricReducer

NAMES = list(ALL_METRICS)
#: two widths, as d_model and d_ff (Qwen3-4B's 2,560 and 9,728 in `bench_gpu_ops.py`)
WIDE, NARROW = 192, 64
CHANNELS = {NARROW: list(range(0, NARROW, 5)), WIDE: list(range(3, WIDE, 11))}


def activations(
    rng: np.random.Generator, width: int, batch: int = 2, seq: int = 24
) -> torch.Tensor:
    """Heavy-tailed bf16 states (many exact ties, as a model's), with a massive activation (a
    share near 1: the entropy's float64 redo), an all-zero token and a constant token."""
    h = rng.standard_t(3, (2, seq, width)).astype(np.float32)
    h[0, 0, 7] = 4000.0
    h[0, 1] = 0.0
    h[1, 2] = -0.5
    return torch.from_numpy(h).to(torch.bfloat16)


def points(n_narrow: int, n_wide: int) -> list[Point]:
    """`n_narrow` residual points and `n_wide` mlp_act points (an all-sites run's two widths)."""
    return [Point.at(i) for i in range(n_narrow)] + [Point.at(i, "mlp_act") for i in range(n_wide)]


def states_of(chosen: list[Point], seed: int = 0, seq: int = 24) -> dict[Point, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {p: activations(rng, WIDE if p.site == "mlp_act" else NARROW, seq=seq) for p in chosen}


def batched(states: dict[Point, torch.Tensor], **options: object) -> dict:
    reducer = MetricReducer(NAMES, CHANNELS, topk=8, torch_path=True, **options)  # type: ignore[arg-type]
    for point, hidden in states.items():
        reducer(point, hidden)
    return reducer.to_host()


def per_point(states: dict[Point, torch.Tensor]) -> dict:
    channels = {width: torch.tensor(chosen) for width, chosen in CHANNELS.items()}
    return old_reduce_to_host({p.name: h for p, h in states.items()}, NAMES, 8, None, channels)


def assert_same(new: dict, old: dict, rtol: float = 1e-6) -> None:
    assert new.keys() == old.keys()
    for key, reference in old.items():
        got = new[key]
        assert got.dtype == reference.dtype and got.shape == reference.shape, key
        if key[1] in METRICS:
            np.testing.assert_allclose(got, reference, rtol=rtol, atol=0, err_msg=str(key))
        else:  # top-k and sampled channels: copied or sorted, never computed
            np.testing.assert_array_equal(got, reference, err_msg=str(key))


@pytest.mark.parametrize("seed", [0, 1])
def test_every_metric_matches_the_old_per_point_path(seed: int) -> None:
    states = states_of(points(3, 2), seed)
    new, old = batched(states), per_point(states)
    assert_same(new, old)
    zero = new[("layer_0", "kurtosis")].reshape(2, -1)[0, 1]
    assert np.isnan(zero)  # degenerate tokens stay NaN, not 0 (assert_allclose matches NaNs)
    assert new[("layer_0", "topk_channel")][0, 0] == 7  # the massive activation


def test_staging_budget_and_reused_buffers_change_no_value() -> None:
    """A budget of one state reduces every point on its own as soon as it is held; a second
    batch reuses the first one's buffers and gives the same arrays."""
    states = states_of(points(3, 2))
    slot = 2 * 24 * WIDE * 4
    unlimited = batched(states)
    assert_same(batched(states, staging_bytes=slot), unlimited, rtol=0)
    reducer = MetricReducer(NAMES, CHANNELS, topk=8, torch_path=True)
    for _ in range(2):
        with OpCounter() as ops:
            for point, hidden in states.items():
                reducer(point, hidden)
            second = reducer.to_host()
    assert ops.ops["empty"] == 0  # steady state: no staging buffer is allocated
    assert_same(second, unlimited, rtol=0)


def test_a_state_changed_in_place_after_its_hook_is_not_seen() -> None:
    hidden = states_of([Point.at(0)])[Point.at(0)]
    expected = batched({Point.at(0): hidden})
    reducer = MetricReducer(NAMES, CHANNELS, topk=8, torch_path=True)
    reducer(Point.at(0), hidden)
    hidden.mul_(3)  # a model may reuse or change its buffers after the hook has run
    assert_same(reducer.to_host(), expected, rtol=0)


def test_staged_states_group_by_shape_in_first_seen_order() -> None:
    staged = StagedStates(limit_bytes=10**9)
    a, b = torch.ones(2, 3, 4), torch.zeros(2, 3, 6)
    for i, hidden in enumerate([a, b, a * 2, a * 3]):
        assert not staged.hold(Point.at(i), hidden)
    first, second = staged.release()
    assert [p.depth for p in first.points] == [0, 2, 3] and first.rows.shape == (18, 4)
    assert torch.equal(first.rows[6:12], torch.full((6, 4), 2.0))
    assert [p.depth for p in second.points] == [1] and second.rows.shape == (6, 6)
    assert staged.release() == []
    assert StagedStates(limit_bytes=2 * 3 * 4 * 4).hold(Point.at(0), a)  # one state fills it


def test_staging_buffers_grow_no_further_than_the_budget() -> None:
    slot = 2 * 3 * 4 * 4
    staged = StagedStates(limit_bytes=3 * slot)
    held = [staged.hold(Point.at(i), torch.full((2, 3, 4), float(i))) for i in range(3)]
    assert held == [False, False, True] and staged.allocated_bytes() == 3 * slot  # not 4
    (rows,) = staged.release()
    assert rows.rows[:, 0].tolist() == [0.0] * 6 + [1.0] * 6 + [2.0] * 6


def ops_per_batch(states: dict[Point, torch.Tensor]) -> OpCounter:
    """The torch operations of one steady-state batch: hooks' copies, reduction, one copy out."""
    reducer = MetricReducer(NAMES, CHANNELS, topk=8, torch_path=True)
    for _ in range(2):  # the first batch sizes the staging buffers
        with OpCounter() as ops:
            for point, hidden in states.items():
                reducer(point, hidden)
            reducer.to_host()
    return ops


@pytest.mark.parametrize(("n_narrow", "n_wide"), [(3, 0), (145, 36)], ids=["3", "181"])
def test_ops_per_batch_grow_with_widths_not_points(n_narrow: int, n_wide: int) -> None:
    """At most 150 per width plus 3 per point (the per-point path took ~130 per point)."""
    states = states_of(points(n_narrow, n_wide), seq=4)  # the count does not depend on sizes
    widths = len({h.shape[-1] for h in states.values()})
    ops = ops_per_batch(states)
    assert ops.total <= 150 * widths + 3 * len(states), ops.ops.most_common(8)
    with OpCounter() as old:
        per_point(states)
    assert old.total >= 100 * len(states)  # what the bound is measured against

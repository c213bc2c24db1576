"""The CPU reduction path: held hidden states, the shared pool, and the reducer's two paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zipfstage.collect.cpu_reduce import CpuReducer
from zipfstage.collect.metrics import CHANNEL_WISE, METRICS
from zipfstage.collect.points import Point
from zipfstage.collect.reducer import HeldStates, MetricReducer
from zipfstage.thread_pool import map_here_too


def test_held_states_are_copies_and_their_buffers_are_reused() -> None:
    held = HeldStates(limit_bytes=10_000)
    first, second = Point.at(0), Point.at(1)
    hidden = torch.arange(40.0).reshape(4, 10)
    assert not held.hold(first, hidden)
    hidden.add_(1000)  # a later in-place change must not reach the held copy
    assert held.hold(second, torch.ones(4, 10, dtype=torch.bfloat16)) is False
    released = held.release()
    assert [point for point, _ in released] == [first, second]
    assert torch.equal(released[0][1], torch.arange(40.0).reshape(4, 10))
    assert released[1][1].dtype == torch.float32
    buffers = {id(buffer) for _, buffer in released}
    held.hold(first, torch.zeros(4, 10))
    assert id(held.release()[0][1]) in buffers  # reused, not reallocated
    assert held.hold(first, torch.zeros(100, 100))  # 40 KB > the 10 KB limit: release now


def test_reducer_gives_the_same_arrays_on_both_paths() -> None:
    """CPU kernels (held until to_host) against the torch path used on a GPU; 300 rows span
    three tiles of the kernels, the last one partial."""
    rng = np.random.default_rng(0)
    states = {
        Point.at(0): torch.tensor(rng.standard_t(3, (3, 100, 48)), dtype=torch.float32),
        Point.at(0, "mlp_act"): torch.tensor(rng.standard_t(3, (3, 100, 96)), dtype=torch.float32),
    }
    metrics = [*METRICS, CHANNEL_WISE]
    channels = {48: [1, 5, 40], 96: [0, 90]}
    on_cpu = MetricReducer(metrics, channels, topk=8, hill_k=None)
    on_device = MetricReducer(metrics, channels, topk=8, hill_k=None, torch_path=True)
    for point, hidden in states.items():
        on_cpu(point, hidden)
        on_device(point, hidden)
    cpu, device = on_cpu.to_host(), on_device.to_host()
    assert cpu.keys() == device.keys() and len(cpu) == 2 * (len(METRICS) + 4)
    for key, values in device.items():
        assert cpu[key].dtype == values.dtype, key
        np.testing.assert_allclose(cpu[key], values, rtol=2e-5, atol=1e-6, err_msg=str(key))
    for point, hidden in states.items():  # the sampled channels are copied, not computed
        sampled = hidden.reshape(-1, hidden.shape[-1])[:, channels[hidden.shape[-1]]].numpy()
        np.testing.assert_array_equal(cpu[(point.name, CHANNEL_WISE)], sampled)
    assert on_cpu.to_host() == {}  # reset for the next batch


def test_channel_indices_outside_the_vector_are_refused() -> None:
    """The compiled gather does not check bounds, so the indices are checked before it."""
    reducer = CpuReducer()
    hidden = torch.ones(4, 8)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        reducer.reduce(hidden, ["rms"], channels=np.array([0, 8]))
    assert reducer.reduce(hidden, ["rms"], channels=np.array([7])).sampled.tolist() == [[1.0]] * 4


def test_map_here_too_keeps_order_and_reraises() -> None:
    assert map_here_too(lambda x: x * x, [1, 2, 3, 4]) == [1, 4, 9, 16]
    assert map_here_too(lambda x: x, []) == []

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    with pytest.raises(ValueError, match="two"):
        map_here_too(fail_on_two, [1, 2, 3])


def test_a_metric_added_outside_metrics_py_reads_hidden_stats_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README's extension example: it needs h^2 itself, which the compiled kernels do not keep."""
    from zipfstage.collect import metrics

    def energy_top2(s: metrics.HiddenStats) -> torch.Tensor:
        return s.sq.topk(2, dim=-1).values.sum(-1) / s.sum_sq

    monkeypatch.setitem(metrics.METRICS, "energy_top2", energy_top2)
    hidden = torch.tensor([[3.0, 0.0, 4.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    reducer = MetricReducer(["rms", "energy_top2"], [0], topk=0)
    reducer(Point.at(0), hidden)
    values = reducer.to_host()
    np.testing.assert_allclose(values[("layer_0", "energy_top2")], [1.0, 0.5])
    np.testing.assert_allclose(values[("layer_0", "rms")], [2.5, 1.0])


@pytest.mark.parametrize(("shapes", "threads"), [([(2048, 64)] * 3, 2), ([(2048, 64)] * 31, 2)])
def test_threads_share_the_rows_of_every_state_equally(
    shapes: list[tuple[int, int]], threads: int
) -> None:
    """Every row of every state is reduced exactly once, and the threads get equal work: three
    points on two threads split the middle one."""
    from zipfstage.collect.cpu_reduce import _balanced, _Reduction

    states = [_Reduction.of(torch.zeros(shape), [], 0, None, None) for shape in shapes]
    parts = _balanced(states, threads)
    seen = [np.zeros(state.h.shape[0], dtype=int) for state in states]
    work = []
    for items in parts:
        for state, rows in items:
            seen[next(i for i, s in enumerate(states) if s is state)][rows] += 1
        work.append(sum((rows.stop - rows.start) * state.h.shape[1] for state, rows in items))
    assert all((rows == 1).all() for rows in seen)
    assert max(work) - min(work) <= 128 * 64  # at most one tile apart

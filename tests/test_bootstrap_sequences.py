"""The sequence-block bootstrap: p stays calibrated when the tokens of a sequence are dependent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import norm

from tests.synthetic_store import make_synthetic_store
from zipfstage.config import FitSettings
from zipfstage.errors import ZipfstageError
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.bootstrap import (
    METHOD_IID,
    METHOD_SEQUENCES,
    MIN_SEQUENCES,
    block_indices,
    groups_in_sorted_order,
    round_to_bfloat16,
    sequence_blocks,
)
from zipfstage.fitting.prepared import prepare
from zipfstage.fitting.stage import Pair, read_tasks, sequence_index
from zipfstage.records import FitRecord
from zipfstage.store import open_store


def copula_power_law(
    rng: np.random.Generator, sequences: int, length: int, rho: float, alpha: float = 2.5
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Pareto(alpha) marginals, dependent along each sequence through a latent AR(1)."""
    noise = rng.standard_normal((sequences, length))
    scale = np.sqrt(1 - rho * rho)
    noise[:, 0] /= scale  # stationary start
    latent = lfilter([scale], [1.0, -rho], noise, axis=1)
    values = norm.sf(latent).ravel() ** (-1 / (alpha - 1))
    return values, np.repeat(np.arange(sequences), length)


def share_rejected(rho: float, replicates: int, by_sequence: bool) -> float:
    """Share of p < 0.1 under the null. With B = 9 a calibrated test rejects exactly 10 %."""
    p_values = []
    for seed in range(replicates):
        values, groups = copula_power_law(np.random.default_rng(seed), 40, 128, rho)
        fit = fit_power_law(
            values,
            bootstrap=9,
            seed=seed,
            compare=False,
            groups=groups if by_sequence else None,
        )
        p_values.append(fit.p_value)
    return float(np.mean(np.asarray(p_values) < 0.1))


def test_sequence_blocks_keep_p_calibrated_where_independent_draws_reject() -> None:
    """Strongly dependent tokens (rho 0.95, 40 sequences of 128): independent synthetic draws
    rule a true power law out about half the time; whole-sequence draws about 10 %."""
    assert share_rejected(0.95, 40, by_sequence=False) >= 0.35
    assert share_rejected(0.95, 40, by_sequence=True) <= 0.2


def test_block_indices_draw_whole_sequences_and_exactly_n_values() -> None:
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 9, size=50)
    labels = rng.permutation(np.repeat(np.arange(50) * 7 + 3, sizes))  # any labels, any order
    blocks = sequence_blocks(labels)
    assert blocks.count == 50
    for _ in range(20):
        picked = block_indices(rng, blocks, labels.size)
        assert picked.size == labels.size
        drawn = labels[picked]
        times = np.bincount(picked, minlength=labels.size)
        # every drawn sequence comes whole (each of its values as often), but for the one cut at
        # n (the last drawn)
        for label in np.unique(drawn[drawn != drawn[-1]]):
            members = times[labels == label]
            assert members.min() == members.max() > 0, (label, members)


def test_one_value_per_sequence_draws_like_independent_resampling() -> None:
    """Known answer: with singleton sequences each draw picks each value with chance 1/n."""
    rng = np.random.default_rng(0)
    blocks = sequence_blocks(np.arange(10))
    counts = np.bincount(
        np.concatenate([block_indices(rng, blocks, 10) for _ in range(4000)]), minlength=10
    )
    assert counts.sum() == 40_000
    np.testing.assert_allclose(counts / 4000, 1.0, atol=0.06)


def test_groups_follow_the_prepared_values() -> None:
    values = np.array([3.0, -1.0, 7.0, np.nan, 0.5, 9.0, 2.0, np.inf, 0.0])
    labels = np.arange(values.size) * 10
    xmax = 8.0
    prep = prepare(values, xmax=xmax)
    ordered = groups_in_sorted_order(values, labels, xmax)
    np.testing.assert_array_equal(prep.x, [0.5, 2.0, 3.0, 7.0])
    np.testing.assert_array_equal(ordered, [40, 60, 0, 20])


def test_record_says_how_the_p_value_was_obtained() -> None:
    values, groups = copula_power_law(np.random.default_rng(1), 25, 64, 0.5)
    by_sequence = fit_power_law(values, bootstrap=3, groups=groups, compare=False)
    assert (by_sequence.p_value_method, by_sequence.p_value_grid) == (
        METHOD_SEQUENCES,
        "continuous",
    )
    assert fit_power_law(values, bootstrap=3, compare=False).p_value_method == METHOD_IID
    few = groups % (MIN_SEQUENCES - 1)  # too few sequences to tell how they vary
    assert fit_power_law(values, bootstrap=3, groups=few, compare=False).p_value_method == (
        METHOD_IID
    )
    rounded = fit_power_law(round_to_bfloat16(values), bootstrap=3, groups=groups, compare=False)
    assert rounded.p_value_grid == "bfloat16"
    assert fit_power_law(values, compare=False).p_value_method is None  # no bootstrap, no method
    stored = by_sequence.to_record()
    assert stored["p_value_method"] == METHOD_SEQUENCES
    again = FitRecord.from_record("p", "m", stored)
    assert (again.p_value_method, again.p_value_grid) == (METHOD_SEQUENCES, "continuous")
    old = {k: v for k, v in stored.items() if not k.startswith("p_value_")}
    assert FitRecord.from_record("p", "m", old).p_value_method is None  # older records load
    with pytest.raises(ZipfstageError, match="groups has 3 labels for"):
        fit_power_law(values, groups=groups[:3])


def test_sequence_index_splits_where_the_position_does_not_grow() -> None:
    positions = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 0, 1])
    np.testing.assert_array_equal(sequence_index(positions), [0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 3])
    skipped = positions[positions >= 1]  # --skip-positions 1 leaves out every first token
    np.testing.assert_array_equal(sequence_index(skipped), [0, 0, 0, 1, 1, 1, 2])


@pytest.mark.parametrize("skip_positions", [0, 1])
def test_fit_stage_hands_each_drawn_value_its_sequence(tmp_path: Path, skip_positions: int) -> None:
    make_synthetic_store(tmp_path, points=("embed",), n_batches=2, batch_size=12, seq_len=32)
    store = open_store(tmp_path)
    settings = FitSettings(max_samples=300, skip_positions=skip_positions, bootstrap=2)
    (task,) = read_tasks(store, Pair("embed", "rms", "hash"), settings)
    keep = store.positions() >= skip_positions
    rows = np.flatnonzero(keep)
    values = store.metric("embed", "rms")[keep]
    drawn = [int(np.flatnonzero(values == v)[0]) for v in task.values]  # values are distinct
    assert task.groups is not None and task.groups.size == task.values.size == 300
    np.testing.assert_array_equal(task.groups, rows[drawn] // 32)
    fit = fit_power_law(task.values, bootstrap=2, groups=task.groups, compare=False)
    assert fit.p_value_method == METHOD_SEQUENCES

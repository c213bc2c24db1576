"""Clauset's semi-parametric bootstrap: known verdicts and a uniform p-value under the null."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from zipfstage.fitting import fit_power_law


def test_pareto_sample_is_plausible() -> None:
    rng = np.random.default_rng(0)
    result = fit_power_law(rng.pareto(1.5, 1000) + 1, bootstrap=100, seed=1, compare=False)
    assert result.p_value is not None and result.p_value > 0.1
    assert result.alpha_ci is not None and result.alpha_ci[0] < 2.5 < result.alpha_ci[1]
    assert result.xmin_ci is not None and result.xmin_ci[0] <= result.xmin <= result.xmin_ci[1]
    assert result.bootstrap_alpha is not None and result.bootstrap_alpha.size == 100
    assert set(result.curves()) >= {"bootstrap_alpha", "bootstrap_xmin"}


def test_clearly_curved_tail_is_rejected() -> None:
    rng = np.random.default_rng(1)
    result = fit_power_law(
        rng.exponential(1, 2000), min_tail=1000, bootstrap=50, seed=2, compare=False
    )
    assert result.p_value is not None and result.p_value < 0.05


def test_bootstrap_is_seeded() -> None:
    x = np.random.default_rng(2).pareto(2.0, 300) + 1
    a = fit_power_law(x, bootstrap=20, seed=5, compare=False)
    b = fit_power_law(x, bootstrap=20, seed=5, compare=False)
    c = fit_power_law(x, bootstrap=20, seed=6, compare=False)
    assert a.p_value == b.p_value and a.alpha_ci == b.alpha_ci
    assert not np.array_equal(a.bootstrap_alpha, c.bootstrap_alpha)


def test_p_value_is_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(3)
    p_values = []
    for _ in range(60):
        x = rng.pareto(1.5, 150) + 1
        result = fit_power_law(x, bootstrap=40, seed=int(rng.integers(1 << 30)), compare=False)
        assert result.p_value is not None
        p_values.append(result.p_value)
    # CSN's p is conservative-ish but must not pile up at 0 or 1
    assert stats.kstest(p_values, "uniform").pvalue > 0.001
    assert 0.3 < float(np.mean(p_values)) < 0.7
    assert np.mean(np.array(p_values) < 0.1) < 0.25


@pytest.mark.parametrize("replicates", [0])
def test_no_bootstrap_means_no_p_value(replicates: int) -> None:
    result = fit_power_law(
        np.random.default_rng(4).pareto(1.5, 200) + 1, bootstrap=replicates, compare=False
    )
    assert result.p_value is None and result.alpha_ci is None and result.xmin_ci is None


def test_bfloat16_rounding_matches_torch_and_is_detected() -> None:
    import torch

    from zipfstage.fitting.bootstrap import round_to_bfloat16, storage_grid

    values = np.random.default_rng(3).lognormal(0, 3, size=10_000)
    ours = round_to_bfloat16(values)
    reference = torch.tensor(values, dtype=torch.float32).to(torch.bfloat16).double().numpy()
    np.testing.assert_array_equal(ours, reference)
    assert storage_grid(ours) is round_to_bfloat16
    assert storage_grid(values) is None
    halves = values[values < 6e4].astype(np.float16).astype(np.float64)
    assert storage_grid(halves[np.isfinite(halves)]) is not None


def test_bootstrap_draws_synthetic_tails_on_the_data_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 data tie heavily; synthetic tails must tie the same way, or p is biased low."""
    import zipfstage.fitting.bootstrap as bootstrap_module

    seen: list[np.ndarray] = []
    original = bootstrap_module._on_grid

    def spy(draws: np.ndarray, grid: object) -> np.ndarray:
        out = original(draws, grid)  # type: ignore[arg-type]
        seen.append(out)
        return out

    monkeypatch.setattr(bootstrap_module, "_on_grid", spy)
    x = bootstrap_module.round_to_bfloat16(np.random.default_rng(0).pareto(1.5, 3000) + 1.0)
    fit_power_law(x, bootstrap=5, seed=0, compare=False)
    assert seen and all(
        np.array_equal(bootstrap_module.round_to_bfloat16(s), s) and len(np.unique(s)) < len(s)
        for s in seen
    )
    seen.clear()
    fit_power_law(np.random.default_rng(0).pareto(1.5, 3000) + 1.0, bootstrap=5, compare=False)
    assert seen and all(len(np.unique(s)) == len(s) for s in seen)  # float64 data: no grid

"""Bad input gives a result with a status and a reason, never an exception."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zipfstage.fitting import fit_power_law


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ([], "too_few"),
        ([1.0, 2.0], "too_few"),
        ([np.nan, np.inf, -1.0, 0.0, 2.0, 3.0], "too_few"),
        ([4.0] * 20, "failed"),
    ],
)
def test_unfittable_input_reports_status(values: list[float], status: str) -> None:
    result = fit_power_law(np.array(values))
    assert result.status == status
    assert result.reason
    assert result.alpha is None
    json.loads(result.to_json())


def test_bad_values_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.pareto(1.5, 500) + 1, [np.nan, np.inf, -np.inf, -3.0, 0.0]]
    result = fit_power_law(x, compare=False)
    assert result.ok
    assert (result.n, result.n_dropped) == (500, 5)


def test_ties_are_flagged_not_refitted_as_discrete() -> None:
    rng = np.random.default_rng(1)
    x = np.round(rng.pareto(1.5, 3000) + 1, 1)
    result = fit_power_law(x, compare=False)
    assert result.ok and "ties" in result.flags
    assert result.to_record()["discrete"] is False


def test_impossible_constraints_fail_softly() -> None:
    rng = np.random.default_rng(2)
    result = fit_power_law(rng.pareto(1.5, 100) + 1, alpha_range=(10.0, None), compare=False)
    assert result.status == "failed" and "alpha" in (result.reason or "")
    too_big = fit_power_law(rng.pareto(1.5, 100) + 1, min_tail=1000)
    assert too_big.status == "too_few"


def test_record_has_the_contract_keys() -> None:
    rng = np.random.default_rng(3)
    record = fit_power_law(rng.pareto(1.5, 800) + 1).to_record()
    for key in (
        "alpha",
        "xmin",
        "xmax",
        "ks_distance",
        "n_tail",
        "n",
        "n_dropped",
        "sigma",
        "alpha_ci",
        "xmin_ci",
        "p_value",
        "slope",
        "r2",
        "comparisons",
        "status",
        "reason",
        "flags",
        "discrete",
    ):
        assert key in record
    assert set(record["comparisons"]) == {
        "lognormal",
        "exponential",
        "stretched_exponential",
        "truncated_power_law",
    }
    assert record["p_value"] is None and record["alpha_ci"] is None
    assert record["sigma"] == pytest.approx((record["alpha"] - 1) / np.sqrt(record["n_tail"]))
    assert record["slope"] < 0 and 0 < record["r2"] <= 1

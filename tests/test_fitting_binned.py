"""alpha of tails stored on the bf16/fp16 grid by the binned likelihood (`fitting/binned.py`):
against a direct maximisation with independently built bin edges, and on Pareto data with a known
alpha, where the continuous MLE is biased high for steep tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from zipfstage.fitting import fit_power_law
from zipfstage.fitting.binned import binned_alpha, grid_neighbours
from zipfstage.fitting.bootstrap import round_to_bfloat16, round_to_float16
from zipfstage.records import FitRecord

#: significand bits (the leading one included) of each grid
BITS = {"bfloat16": 8, "float16": 11}
ROUNDING = {"bfloat16": round_to_bfloat16, "float16": round_to_float16}


def edges_by_exponent(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges from the grid's spacing: 2^(e - bits) in [2^(e-1), 2^e), half that below a power
    of two (the grid is finer there), independent of `grid_neighbours`' bit arithmetic."""
    mantissa, exponent = np.frexp(values)
    step = np.ldexp(1.0, exponent - bits)
    below = np.where(mantissa == 0.5, step / 2, step)
    return values - below / 2, values + step / 2


def direct_alpha(tail: np.ndarray, bits: int) -> float:
    values, counts = np.unique(tail, return_counts=True)
    lo, hi = edges_by_exponent(values, bits)

    def minus_loglik(alpha: float) -> float:
        # log[(lo/x0)^(1-a) - (hi/x0)^(1-a)], factored so far bins do not underflow to log 0
        log_mass = (1 - alpha) * np.log(lo / lo[0]) + np.log1p(-((hi / lo) ** (1 - alpha)))
        return -float(np.sum(counts * log_mass))

    res = optimize.minimize_scalar(minus_loglik, bounds=(1.001, 400.0), method="bounded",
                                   options={"xatol": 1e-10})  # fmt: skip
    return float(res.x)


def pareto(rng: np.random.Generator, n: int, alpha: float, xmin: float) -> np.ndarray:
    return np.asarray(xmin * rng.random(n) ** (-1.0 / (alpha - 1.0)))


@pytest.mark.parametrize("grid", sorted(BITS))
def test_neighbours_match_the_grids_spacing(grid: str) -> None:
    rounding = ROUNDING[grid]
    values = np.unique(rounding(np.geomspace(0.01, 300.0, 5000)))
    below, above = grid_neighbours(values, rounding)
    lo, hi = edges_by_exponent(values, BITS[grid])
    assert np.array_equal(below, 2 * lo - values) and np.array_equal(above, 2 * hi - values)
    assert np.array_equal(rounding(below), below) and np.array_equal(rounding(above), above)


@pytest.mark.parametrize("grid", sorted(BITS))
@pytest.mark.parametrize("alpha", [2.2, 9.0, 45.0])
def test_binned_alpha_is_the_likelihoods_maximum(grid: str, alpha: float) -> None:
    rng = np.random.default_rng(int(alpha * 10))
    tail = ROUNDING[grid](pareto(rng, 5000, alpha, 1.7))
    tail = tail[tail >= tail.min()]
    assert binned_alpha(tail, ROUNDING[grid]) == pytest.approx(
        direct_alpha(tail, BITS[grid]), rel=1e-7
    )


@pytest.mark.parametrize(("alpha", "continuous_bias"), [(8.0, 0.1), (40.0, 3.0), (70.0, 10.0)])
def test_binned_alpha_recovers_steep_alphas_the_continuous_mle_misses(
    alpha: float, continuous_bias: float
) -> None:
    """Pareto above 3.3 rounded to bf16, tail taken from the first grid value above 3.3 (whose
    bin lies wholly above it), 10 samples of 20,000."""
    rng = np.random.default_rng(5)
    binned, continuous = [], []
    for _ in range(10):
        x = round_to_bfloat16(pareto(rng, 20_000, alpha, 3.3))
        xmin = float(x[x >= 3.3].min())
        fit = fit_power_law(x, xmin=xmin, compare=False)
        assert fit.alpha_binned is not None and fit.alpha is not None
        binned.append(fit.alpha_binned)
        continuous.append(fit.alpha)
    spread = np.std(binned) / math.sqrt(len(binned))
    assert abs(np.mean(binned) - alpha) < 4 * spread + 1e-3 * alpha
    assert np.mean(continuous) - alpha > continuous_bias


def test_alpha_binned_only_where_the_tail_lies_on_the_grid() -> None:
    rng = np.random.default_rng(2)
    x = pareto(rng, 3000, 2.5, 1.0)
    assert fit_power_law(x, compare=False).alpha_binned is None
    assert fit_power_law(x, xmax=50.0, compare=False).alpha_binned is None
    counts = np.floor(pareto(rng, 3000, 2.5, 1.0))  # small integers are bf16 numbers too
    assert fit_power_law(counts, discrete=True, compare=False).alpha_binned is None
    on_grid = fit_power_law(round_to_bfloat16(x), compare=False)
    assert on_grid.alpha_binned is not None and on_grid.xmin is not None
    tail = round_to_bfloat16(x)
    assert on_grid.alpha_binned == binned_alpha(tail[tail >= on_grid.xmin], round_to_bfloat16)
    stored = FitRecord.from_record("p", "m", on_grid.to_record())
    assert stored.alpha_binned == on_grid.alpha_binned


def test_a_tail_in_one_bin_has_no_binned_alpha() -> None:
    assert binned_alpha(np.array([2.0, 2.0, 2.0]), round_to_bfloat16) is None

"""Exactness against the `powerlaw` package (the oracle), on the reference data at full size."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.shared_data import reference_data
from zipfstage.fitting import fit_power_law

powerlaw = pytest.importorskip("powerlaw")


def oracle(x: np.ndarray) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return powerlaw.Fit(x, parameter_ranges={"alpha": [1, None]}, verbose=0)


def synthetic(name: str, n: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name == "pareto":
        return rng.pareto(1.5, n) + 1
    if name == "steep_pareto":
        return rng.pareto(3.5, n) + 1  # alpha 4.5: powerlaw's default cap of 3 would fail here
    if name == "lognormal":
        return rng.lognormal(0, 1, n)
    if name == "exponential":
        return rng.exponential(1, n)
    if name == "body_tail":
        return np.r_[rng.lognormal(0, 0.5, n // 2), rng.pareto(1.5, n // 2) + 2]
    return np.abs(rng.standard_t(3, n))


def assert_same(x: np.ndarray) -> None:
    ours = fit_power_law(x, compare=False)
    ref = oracle(x)
    assert ours.xmin == ref.xmin
    assert ours.n_tail == ref.n_tail
    # README promises 1e-6; the closed form agrees with powerlaw's to rounding (2e-16 seen)
    assert ours.alpha == pytest.approx(ref.alpha, rel=1e-12)
    assert ours.ks_distance == pytest.approx(ref.D, abs=1e-9)


@pytest.mark.parametrize(
    "name", ["pareto", "steep_pareto", "lognormal", "exponential", "body_tail", "student_t"]
)
def test_matches_powerlaw_on_synthetic_data(name: str) -> None:
    assert_same(synthetic(name))


@pytest.mark.parametrize("seed", range(4))
def test_matches_powerlaw_across_seeds(seed: int) -> None:
    assert_same(synthetic("body_tail", n=1000, seed=seed + 10))


@pytest.mark.parametrize("name", ["blackouts", "surnames", "quakes", "flares"])
def test_matches_powerlaw_on_reference_data_at_full_size(name: str) -> None:
    assert_same(reference_data(name))


@pytest.mark.slow
def test_matches_powerlaw_on_cities_at_full_size() -> None:
    """19,447 values, 7,744 candidates: powerlaw's own scan takes about 25 s."""
    assert_same(reference_data("cities"))


def test_matches_powerlaw_on_fires_at_full_size() -> None:
    """203,785 values: powerlaw's scan of all 2,826 candidates would take minutes, so powerlaw
    scans the 150 candidates around our xmin on the full data (it must choose ours there), and
    our exact scan's KS distance and alpha are checked against powerlaw's fixed-xmin fit at 12
    candidates spread over the whole range, the smallest included."""
    x = reference_data("fires")
    ours = fit_power_law(x, compare=False, scan=True, exact_scan=True)
    assert ours.scan is not None
    unique = ours.scan.xmin
    at = int(np.flatnonzero(unique == ours.xmin)[0])
    lo, hi = unique[max(at - 75, 0)], unique[min(at + 75, unique.size - 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        window = powerlaw.Fit(x, xmin=(lo, hi), parameter_ranges={"alpha": [1, None]}, verbose=0)
    assert window.xmin == ours.xmin and window.n_tail == ours.n_tail
    assert window.alpha == pytest.approx(ours.alpha, rel=1e-12)
    assert pytest.approx(ours.ks_distance, abs=1e-12) == window.D
    for i in np.linspace(0, unique.size - 2, 12).astype(int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fixed = powerlaw.Fit(
                x, xmin=unique[i], parameter_ranges={"alpha": [1, None]}, verbose=0
            )
        assert ours.scan.alpha[i] == pytest.approx(fixed.power_law.alpha, rel=1e-9)
        assert ours.scan.ks[i] == pytest.approx(fixed.power_law.D, abs=1e-9)
    assert np.all(ours.scan.ks >= ours.ks_distance - 1e-12)  # the winner is the global minimum


def test_pruned_scan_agrees_with_full_scan() -> None:
    x = synthetic("body_tail", n=4000, seed=3)
    fast = fit_power_law(x, compare=False, scan=True)
    full = fit_power_law(x, compare=False, scan=True, exact_scan=True)
    assert (fast.xmin, fast.alpha, fast.ks_distance) == (full.xmin, full.alpha, full.ks_distance)
    assert fast.scan is not None and full.scan is not None
    assert full.scan.exact.all()
    exact = fast.scan.exact
    assert not exact.all()  # the bound did prune
    np.testing.assert_allclose(fast.scan.ks[exact], full.scan.ks[exact], rtol=1e-12)
    # a pruned value is a lower bound that already beats the winner's distance
    assert (fast.scan.ks[~exact] <= full.scan.ks[~exact] + 1e-15).all()
    assert (fast.scan.ks[~exact] > fast.ks_distance).all()
    assert int(np.argmin(full.scan.ks)) == int(np.flatnonzero(full.scan.xmin == fast.xmin)[0])


def test_scan_alpha_is_the_mle_of_every_candidate() -> None:
    x = synthetic("pareto", n=500, seed=1)
    result = fit_power_law(x, compare=False, scan=True)
    assert result.scan is not None
    for i in (0, 100, 400):
        xmin = result.scan.xmin[i]
        tail = x[x >= xmin]
        assert result.scan.alpha[i] == pytest.approx(
            1 + tail.size / np.log(tail / xmin).sum(), rel=1e-9
        )


def test_fixed_xmin_and_min_tail() -> None:
    x = synthetic("body_tail", n=2000, seed=2)
    ref = oracle(x)
    fixed = fit_power_law(x, xmin=float(ref.xmin), compare=False)
    assert fixed.alpha == pytest.approx(ref.alpha, rel=1e-9)
    assert fixed.ks_distance == pytest.approx(ref.D, abs=1e-9)
    big = fit_power_law(x, min_tail=1500, compare=False)
    assert big.n_tail >= 1500


def test_xmax_truncated_fit_recovers_alpha() -> None:
    rng = np.random.default_rng(5)
    beta, xmax = 1.5, 100.0
    u = rng.random(20000)
    x = np.exp(-np.log1p(-u * -np.expm1(-beta * np.log(xmax))) / beta)  # truncated on [1, 100]
    result = fit_power_law(x, xmin=1.0, xmax=xmax, compare=False)
    assert result.alpha == pytest.approx(2.5, abs=0.05)
    assert "no_comparisons_with_xmax" not in result.flags

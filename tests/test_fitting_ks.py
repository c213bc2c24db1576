"""The two-sided KS supremum (`ks_sup`), `ks="sup"` and `zipfstage fit --ks`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.errors import ZipfstageError
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.bootstrap import round_to_bfloat16


def two_sided_sup(x: np.ndarray, xmin: float, alpha: float) -> tuple[float, float]:
    """Direct numpy: sup |F - S| over both sides of every jump, and powerlaw's (below-only) D."""
    tail = np.sort(x[x >= xmin])
    u, counts = np.unique(tail, return_counts=True)
    below = (np.cumsum(counts) - counts) / tail.size
    at = np.cumsum(counts) / tail.size
    model = 1.0 - (u / xmin) ** (1.0 - alpha)
    return float(max(np.abs(model - below).max(), np.abs(model - at).max())), float(
        np.abs(model - below).max()
    )


def bf16_sample(n: int, seed: int) -> np.ndarray:
    return round_to_bfloat16(np.abs(np.random.default_rng(seed).standard_t(3, n)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_sup_is_the_two_sided_supremum_on_tied_data(seed: int) -> None:
    x = bf16_sample(20_000, seed)
    fit = fit_power_law(x)
    sup, below = two_sided_sup(x, fit.xmin, fit.alpha)
    assert fit.ks_distance == pytest.approx(below, abs=1e-12)
    assert fit.ks_sup == pytest.approx(sup, abs=1e-12)
    assert fit.ks_sup > fit.ks_distance  # ties: the jumps are where the two conventions part
    assert fit.to_record()["ks_sup"] == fit.ks_sup


def test_without_ties_the_two_distances_differ_by_at_most_one_over_n_tail() -> None:
    fit = fit_power_law(np.random.default_rng(5).pareto(1.5, 3000) + 1)
    assert fit.ks_distance <= fit.ks_sup <= fit.ks_distance + 1.0 / fit.n_tail + 1e-12


@pytest.mark.parametrize("seed", [0, 3])
def test_ks_sup_chooses_the_xmin_with_the_smallest_supremum(seed: int) -> None:
    x = bf16_sample(600, seed)
    fit = fit_power_law(x, ks="sup", scan=True)
    # brute force over every candidate (each unique value but the largest, alpha > 1)
    best = (np.inf, np.nan)
    for xmin in np.unique(x)[:-1]:
        tail = x[x >= xmin]
        alpha = 1.0 + tail.size / np.sum(np.log(tail / xmin))
        if alpha > 1.0:
            best = min(best, (two_sided_sup(x, xmin, alpha)[0], xmin))
    assert fit.xmin == best[1]
    assert fit.ks_sup == pytest.approx(best[0], abs=1e-12)
    assert fit.scan is not None and np.nanmin(fit.scan.ks) == pytest.approx(best[0], abs=1e-12)
    default = fit_power_law(x)
    assert default.ks_sup >= fit.ks_sup - 1e-12  # the sup rule can only lower the supremum


def test_exact_sup_scan_agrees_with_the_pruned_one() -> None:
    x = bf16_sample(5000, 7)
    fast = fit_power_law(x, ks="sup", scan=True)
    full = fit_power_law(x, ks="sup", scan=True, exact_scan=True)
    assert (fast.xmin, fast.alpha, fast.ks_sup) == (full.xmin, full.alpha, full.ks_sup)
    assert fast.scan is not None and full.scan is not None
    assert np.allclose(fast.scan.ks[fast.scan.exact], full.scan.ks[fast.scan.exact], atol=1e-12)


def test_bootstrap_with_sup_compares_suprema(monkeypatch: pytest.MonkeyPatch) -> None:
    """p must be the share of synthetic sets whose smallest supremum (the exact scan, which
    `test_ks_sup_chooses_the_xmin_with_the_smallest_supremum` checks by brute force) is at least
    the data's: ignoring ks="sup" in the re-fits or in the comparison changes it."""
    import zipfstage.fitting.bootstrap as boot

    synthetic: list[np.ndarray] = []
    scan = boot.scan_tail

    def recording(prep, **kwargs):  # type: ignore[no-untyped-def]
        synthetic.append(prep.x.copy())
        return scan(prep, **kwargs)

    monkeypatch.setattr(boot, "scan_tail", recording)
    x = round_to_bfloat16(np.random.default_rng(2).pareto(1.5, 20_000) + 1.0)
    fit = fit_power_law(x, ks="sup", bootstrap=30, seed=1, compare=False)
    assert len(synthetic) == 30 and fit.n_failed == 0
    monkeypatch.undo()
    sups = np.array(
        [fit_power_law(s, ks="sup", exact_scan=True, compare=False).ks_sup for s in synthetic]
    )
    assert fit.ks_sup is not None and fit.ks_distance is not None
    assert fit.p_value == pytest.approx(np.mean(sups >= fit.ks_sup))
    # the test has power: comparing the data's powerlaw distance instead gives another p
    assert np.mean(sups >= fit.ks_distance) != fit.p_value


def test_unknown_ks_rule_is_a_user_error() -> None:
    with pytest.raises(ZipfstageError, match="ks must be one of"):
        fit_power_law(np.arange(1.0, 100.0), ks="two-sided")  # type: ignore[arg-type]


def test_fit_ks_option_is_part_of_the_fit_hash(tmp_path: Path) -> None:
    runner = CliRunner()
    make_synthetic_store(tmp_path, n_batches=1, batch_size=2, seq_len=32, channels=1)
    args = ["fit", "--out", str(tmp_path), "--workers", "1", "--metrics", "rms"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, args)
    assert "fitted 0" in again.output, again.output
    sup = runner.invoke(app, [*args, "--ks", "sup"])
    assert sup.exit_code == 0 and "fitted 0" not in sup.output, sup.output
    record = json.loads((tmp_path / "fits.json").read_text())["embed"]["rms"]
    assert record["ks_sup"] is not None and record["ks_sup"] >= record["ks_distance"]
    bad = runner.invoke(app, [*args, "--ks", "both"])
    assert bad.exit_code == 2

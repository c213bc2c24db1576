"""`zipfstage fit` end to end on a synthetic store (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.store.fits import read_fit_curves, read_fit_records
from zipfstage.store.reader import open_store

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    make_synthetic_store(out, n_batches=2, batch_size=4, seq_len=64, channels=3)
    result = runner.invoke(app, ["fit", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


def test_fits_every_point_and_metric(store: Path) -> None:
    fits = json.loads((store / "fits.json").read_text())
    assert set(fits) == {"embed", "layer_1", "layer_3"}
    for point in fits:
        assert set(fits[point]) == {"rms", "max_abs", "kurtosis", "channel_wise"}
        assert len(fits[point]["channel_wise"]) == 3
        assert all("channel" in r and r["status"] == "ok" for r in fits[point]["channel_wise"])
    record = fits["embed"]["rms"]
    assert record["status"] == "ok" and record["n"] == 512 - 8  # position 0 left out
    assert set(record["comparisons"]) == {
        "lognormal",
        "exponential",
        "stretched_exponential",
        "truncated_power_law",
    }
    # alpha grows with depth in the synthetic store (2.0, 2.5, 3.0)
    alphas = [fits[p]["max_abs"]["alpha"] for p in ("embed", "layer_1", "layer_3")]
    assert alphas[0] < alphas[2]
    assert read_fit_records(store)["embed"]["rms"]["alpha"] == record["alpha"]
    curves = read_fit_curves(store, "embed", "rms")
    assert {"scan_xmin", "scan_ks", "scan_alpha"} <= set(curves)
    assert curves["scan_ks"].min() == pytest.approx(record["ks_distance"])
    wise = read_fit_curves(store, "embed", "channel_wise")
    assert set(np.unique(wise["scan_channel"]).astype(int)) == {
        r["channel"] for r in fits["embed"]["channel_wise"]
    }


def test_rerun_skips_unchanged_and_force_refits(store: Path) -> None:
    again = runner.invoke(app, ["fit", "--out", str(store), "--workers", "1"])
    assert again.exit_code == 0 and "fitted 0" in again.output and "skipped 12" in again.output
    forced = runner.invoke(
        app,
        [
            "fit",
            "--out",
            str(store),
            "--workers",
            "1",
            "--force",
            "--points",
            "embed",
            "--metrics",
            "rms",
        ],
    )
    assert forced.exit_code == 0 and "fitted 1" in forced.output


def test_changed_settings_refit_with_subsample_and_bootstrap(store: Path) -> None:
    result = runner.invoke(
        app,
        [
            "fit",
            "--out",
            str(store),
            "--workers",
            "2",
            "--points",
            "layer_1",
            "--metrics",
            "max_abs,channel_wise",
            "--max-samples",
            "300",
            "--bootstrap",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    fits = json.loads((store / "fits.json").read_text())
    record = fits["layer_1"]["max_abs"]
    assert record["n"] == 300 and record["p_value"] is not None
    assert "bootstrap_alpha" in read_fit_curves(store, "layer_1", "max_abs")
    # a later fit without bootstrap leaves no stale bootstrap draws behind
    plain = runner.invoke(
        app,
        [
            "fit",
            "--out",
            str(store),
            "--workers",
            "1",
            "--points",
            "layer_1",
            "--metrics",
            "max_abs",
            "--max-samples",
            "300",
        ],
    )
    assert plain.exit_code == 0, plain.output
    assert "bootstrap_alpha" not in read_fit_curves(store, "layer_1", "max_abs")
    assert "scan_ks" in read_fit_curves(store, "layer_1", "max_abs")


@pytest.mark.parametrize("args", [["--points", "nope"], ["--metrics", "nope"]])
def test_unknown_selection_exits_2(store: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["fit", "--out", str(store), *args])
    assert result.exit_code == 2
    assert "not in the store" in result.output


def test_missing_store_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fit", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no store" in result.output


def test_store_without_committed_data_exits_2(tmp_path: Path) -> None:
    make_synthetic_store(
        tmp_path, n_batches=2, batch_size=2, seq_len=16, channels=2, complete=False
    )
    # complete=False stops after batch 0 of 2 is written: drop that commit to leave none
    zarr.open_group(open_store(tmp_path).path, mode="r+")["progress"][:] = 0
    result = runner.invoke(app, ["fit", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no committed data" in result.output


def test_skip_positions_leaves_out_the_first_tokens(tmp_path: Path) -> None:
    make_synthetic_store(
        tmp_path, n_batches=2, batch_size=4, seq_len=64, channels=2, metrics=("rms",)
    )
    n_rows, n_sequences = 2 * 4 * 64, 2 * 4
    default = runner.invoke(app, ["fit", "--out", str(tmp_path), "--workers", "1"])
    assert default.exit_code == 0, default.output
    record = read_fit_records(tmp_path)["embed"]["rms"]
    assert record["n"] == n_rows - n_sequences and record["skip_positions"] == 1
    kept = runner.invoke(
        app, ["fit", "--out", str(tmp_path), "--workers", "1", "--skip-positions", "0"]
    )
    assert kept.exit_code == 0, kept.output
    record = read_fit_records(tmp_path)["embed"]["rms"]
    assert record["n"] == n_rows and record["skip_positions"] == 0


def test_plot_and_report_refuse_fits_older_than_the_store(tmp_path: Path) -> None:
    """fit on a partial store, collect adds tokens: figures must not lay old fits on new data."""
    make_synthetic_store(
        tmp_path,
        n_batches=3,
        batch_size=4,
        seq_len=64,
        channels=2,
        metrics=("rms",),
        complete=False,
    )
    assert runner.invoke(app, ["fit", "--out", str(tmp_path), "--workers", "1"]).exit_code == 0
    partial = open_store(tmp_path).n_tokens
    make_synthetic_store(
        tmp_path / "full", n_batches=3, batch_size=4, seq_len=64, channels=2, metrics=("rms",)
    )
    # the "collect finished" store: same layout, more committed rows; keep the old fits group
    import shutil

    shutil.copytree(tmp_path / "store.zarr" / "fits", tmp_path / "full" / "store.zarr" / "fits")
    # the same generation (store_id), only grown: what collect does to a store fit already read
    from zipfstage.store.writer import update_attributes

    same = {"store_id": open_store(tmp_path).attributes.store_id}
    update_attributes(tmp_path / "full" / "store.zarr", same)
    for command in ("plot", "report"):
        result = runner.invoke(app, [command, "--out", str(tmp_path / "full")])
        assert result.exit_code == 2, result.output
        assert f"made from {partial:,} tokens" in result.output and "run `zipfstage fit" in (
            result.output
        )

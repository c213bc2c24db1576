"""The fit record schema: written by `fit`, read by `plot` and `report`, the same both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

import zipfstage.fitting.bootstrap as bootstrap_module
from tests.cli_helpers import small_collect_args
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.fitting import fit_power_law
from zipfstage.formatting import fmt_p_value
from zipfstage.records import (
    CHANNEL_WISE,
    Comparison,
    FitRecord,
    jsonable,
    lookup,
    parse_records,
)
from zipfstage.store.attributes import RunAttributes
from zipfstage.store.layout import ROOT_ATTR, RunFolder, remove_derived_outputs, store_path


def _finite_params(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a reader keeps it: parameters that are not finite numbers are dropped."""
    comparisons = {
        name: {**c, "params": {k: v for k, v in c["params"].items() if v is not None}}
        for name, c in record["comparisons"].items()
    }
    return {**record, "comparisons": comparisons}


def test_a_fitted_record_reads_back_unchanged() -> None:
    x = np.random.default_rng(0).pareto(1.5, 1500) + 1
    record = fit_power_law(x, bootstrap=4, seed=1).replace(skip_positions=1).to_record()
    json.dumps(record, allow_nan=False)  # plain JSON already
    again = FitRecord.from_record("p", "m", record).to_record()
    assert again == _finite_params(record)
    assert list(again) == list(record)  # the same key order, so fits.json reads the same


def test_every_field_round_trips() -> None:
    full = FitRecord(
        point="embed",
        metric="rms",
        alpha=2.5,
        alpha_ci=(2.4, 2.6),
        xmin=1.5,
        xmin_ci=(1.2, 1.9),
        xmax=None,
        ks_distance=0.02,
        n_tail=120,
        n=1000,
        n_dropped=3,
        sigma=0.13,
        p_value=0.4,
        n_failed=2,
        slope=-0.7,
        intercept=2.1,
        r2=0.99,
        channel=7,
        skip_positions=1,
        store_tokens=4096,
        flags=("ties",),
        comparisons={"lognormal": Comparison(R=1.5, p=0.2, params={"mu": 0.1, "sigma": 1.0})},
    )
    back = FitRecord.from_record("embed", "rms", full.to_record())
    assert back == full
    assert back.comparisons["lognormal"].name == "lognormal"


def test_a_crashed_fit_keeps_its_short_record() -> None:
    crashed = FitRecord(status="failed", reason="ValueError: boom", n=10, channel=3)
    assert crashed.to_record() == {
        "status": "failed",
        "reason": "ValueError: boom",
        "n": 10,
        "channel": 3,
    }
    assert not FitRecord.from_record("p", "m", crashed.to_record()).ok


def test_bad_values_read_as_none_and_nan_writes_as_null() -> None:
    read = FitRecord.from_record("p", "m", {"alpha": "nan", "xmin": True, "n_tail": 4.0})
    assert (read.alpha, read.xmin, read.n_tail, read.status) == (None, None, 4, "ok")
    assert jsonable({"a": float("nan"), "b": (np.float32(1.5), float("inf"))}) == {
        "a": None,
        "b": [1.5, None],
    }


def test_parse_records_splits_channels_and_fills_missing() -> None:
    table, channels = parse_records(
        {"embed": {"rms": {"alpha": 2.0, "xmin": 1.0}, CHANNEL_WISE: [{"channel": 5}, {}]}}
    )
    assert table["embed"]["rms"].ok
    assert [f.channel for f in channels["embed"]] == [None, 5]
    assert lookup(table, "embed", "kurtosis").status == "missing"


def test_failed_bootstrap_replicates_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bootstrap_module.scan_tail
    calls = {"n": 0}

    def every_other_fails(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return None if calls["n"] % 2 else real(*args, **kwargs)

    monkeypatch.setattr(bootstrap_module, "scan_tail", every_other_fails)
    x = np.random.default_rng(4).pareto(1.5, 600) + 1
    result = fit_power_law(x, bootstrap=10, seed=2, compare=False)
    assert result.n_failed == 5 and result.to_record()["n_failed"] == 5
    assert result.p_value is not None and (result.p_value * 5) % 1 == pytest.approx(0)
    assert fmt_p_value(result.p_value, result.n_failed).endswith("(5 failed)")
    assert fit_power_law(x, compare=False).to_record()["n_failed"] is None


def test_run_attributes_round_trip_the_stored_dict(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=2, seq_len=16)
    root = zarr.open_group(store_path(tmp_path), mode="r", zarr_format=3)
    stored = dict(root.attrs[ROOT_ATTR])  # type: ignore[arg-type]
    attributes = RunAttributes.from_store(root)
    assert attributes.to_dict() == stored
    assert attributes.points == tuple(stored["points"]) and attributes.complete
    assert RunAttributes.from_dict({**stored, "future_key": 1}).to_dict()["future_key"] == 1


def test_run_attributes_round_trip_a_collected_store(tiny_llama: Path, tmp_path: Path) -> None:
    args = ["collect", "--model", str(tiny_llama), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, *small_collect_args(256, "embed,last", "rms")])
    assert result.exit_code == 0, result.output
    root = zarr.open_group(store_path(tmp_path), mode="r", zarr_format=3)
    stored = dict(root.attrs[ROOT_ATTR])  # type: ignore[arg-type]
    attributes = RunAttributes.from_store(root)
    assert attributes.to_dict() == stored and not attributes.extra
    assert attributes.n_tokens == 256 and attributes.model_name == str(tiny_llama)


def test_a_new_store_removes_every_derived_output_and_keeps_the_rest(tmp_path: Path) -> None:
    folder = RunFolder.at(tmp_path)
    for path in (folder.tokenizer, folder.plots, folder.report_assets, folder.compare):
        path.mkdir()
    for path in (folder.fits_json, folder.report_html, folder.report_markdown):
        path.write_text("x")
    folder.store.mkdir()
    remove_derived_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare", "store.zarr"]

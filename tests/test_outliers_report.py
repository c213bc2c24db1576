"""The outlier analysis end to end: `fit` writes outliers.json (and never fits the top-k arrays),
`plot` draws its three figures, `report` gains an "Outlier channels" section with every piece of
token text escaped in HTML and Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_topk_store
from zipfstage.cli import app
from zipfstage.config import OutlierSettings
from zipfstage.outliers import run_outlier_analysis
from zipfstage.report.escape import markdown_text
from zipfstage.report.outliers_section import HEADERS
from zipfstage.store.writer import update_attributes

runner = CliRunner()
EVIL = "<img src=x onerror=alert(1)>`rm -rf`|*x*"
POINTS = ("embed", "layer_0", "layer_1", "layer_2", "layer_3", "layer_1.mlp_act", "layer_1.mlp_out")


def plant(point: str, batch: int, hidden: np.ndarray, pos: np.ndarray, ids: np.ndarray) -> None:
    ids[pos == 0] = 1
    if point in ("layer_2", "layer_3"):
        hidden[pos == 0, 7] = 2.5e4
    if point == "layer_1.mlp_act":
        hidden[pos == 5, 11] = 300.0
    if point == "layer_1.mlp_out":
        hidden[pos == 5, 5] = 200.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outlier_report")
    make_topk_store(out, POINTS, plant=plant, widths={"layer_1.mlp_act": 64})
    write_synthetic_fits(out, bootstrap=False, failed=None)
    path = run_outlier_analysis(out, OutlierSettings())
    assert path is not None
    data = json.loads(path.read_text())
    data["points"]["layer_2"]["massive"]["top_tokens"][0]["text"] = EVIL
    data["points"]["layer_2"]["persistent_channels"][0]["tokens"][0]["text"] = EVIL
    path.write_text(json.dumps(data))
    return out


def test_plot_writes_the_outlier_figures(run_dir: Path) -> None:
    result = runner.invoke(app, ["plot", "--out", str(run_dir), "--metrics", "max_abs"])
    assert result.exit_code == 0, result.output
    for name in ("massive_activations", "outlier_channels", "hill_tail"):
        png = run_dir / "plots" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_report_section_in_html_and_markdown_with_escaped_tokens(run_dir: Path) -> None:
    result = runner.invoke(app, ["report", "--out", str(run_dir), "--top-tokens", "3"])
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    assert "<h2>Outlier channels</h2>" in html and "## Outlier channels" in md
    for text in (html, md):
        assert "Massive activations first appear at layer 2 (layer" in text
        assert "channel 7" in text and "first position" in text
        assert "<img src=x" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "`rm -rf`" not in md  # a code span would end at the token's backtick
    assert md.count(markdown_text(EVIL)) == 3  # summary, massive, persistent
    section = md[md.index("## Outlier channels") :]
    assert "| 1 | 5 | 11 |" in section  # super-weight candidate: layer, row, column
    for name in ("massive_activations", "outlier_channels", "hill_tail"):
        assert f"(report_files/{name}.png)" in section
        assert (run_dir / "report_files" / f"{name}.png").is_file()
    rows = [
        line for line in section.splitlines() if line.startswith(f"| {markdown_text('layer_2')} |")
    ]
    massive_row, persistent_row = rows[:2]
    cell_borders = re.compile(r"(?<!\\)\|")  # a GFM cell's own pipes come escaped as \|
    assert len(cell_borders.findall(massive_row)) == len(HEADERS["massive"]) + 1
    assert len(cell_borders.findall(persistent_row)) == len(HEADERS["persistent"]) + 1


def test_report_says_when_the_analysis_is_stale(run_dir: Path, tmp_path: Path) -> None:
    path = run_dir / "outliers.json"
    saved = path.read_text()
    data = json.loads(saved)
    data["n_tokens_store"] = 1
    path.write_text(json.dumps(data))
    try:
        result = runner.invoke(app, ["report", "--out", str(run_dir), "--top-tokens", "0"])
        assert result.exit_code == 0, result.output
        md = (run_dir / "report.md").read_text()
        assert "another store state" in md[md.index("## Outlier channels") :]
    finally:
        path.write_text(saved)


def test_fit_runs_the_analysis_and_skips_topk_arrays(tmp_path: Path) -> None:
    make_topk_store(tmp_path, ("embed", "layer_1", "layer_2"), plant=plant, seq_len=32)
    info_metrics = ["max_abs", "median_abs", "hill_tail", "topk_abs", "topk_channel", "topk_sign"]
    update_attributes(tmp_path / "store.zarr", {"metrics": info_metrics})
    result = runner.invoke(app, ["fit", "--out", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    fits = json.loads((tmp_path / "fits.json").read_text())
    assert set(fits["layer_1"]) == {"max_abs", "median_abs", "hill_tail"}
    outliers = json.loads((tmp_path / "outliers.json").read_text())
    assert outliers["first_massive_layer"] == 2

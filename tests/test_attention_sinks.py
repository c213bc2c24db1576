"""The attn site downstream: Gu et al.'s sink share in outliers.json against numpy on the stored
arrays, per-head fits of sink and attn_entropy, the two figures and the report paragraph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.tiny_models import LAYERS
from zipfstage.cli import app
from zipfstage.compare.outliers import read_sink_shares
from zipfstage.compare.sinks import sink_by_depth_figure
from zipfstage.outliers.analysis import read_outliers
from zipfstage.outliers.sinks import relation
from zipfstage.plotting.attention_sinks import attention_sinks_figure, sink_share_figure
from zipfstage.records import head_fits, parse_records
from zipfstage.report.outliers_section import outlier_figures, outliers_html, outliers_markdown

runner = CliRunner()
HEADS = 4


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def run_dir(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sinks") / "run"
    _invoke(
        *("collect", "--model", str(tiny_llama), "--data", "pydoc", "--out", str(out)),
        *("--max-tokens", "256", "--seq-len", "32", "--batch-size", "4", "--topk", "4"),
        *("--points", "all", "--sites", "attn,resid_post", "--metrics", "max_abs,median_abs"),
        "-q",
    )
    # the attn metrics only: the sink analysis needs the top-k arrays, not the hidden fits
    _invoke(
        "fit",
        "--out",
        str(out),
        "--bootstrap",
        "0",
        "--workers",
        "1",
        "--metrics",
        "sink,attn_entropy",
    )
    return out


def test_sink_share_per_layer_matches_numpy_on_the_stored_arrays(run_dir: Path) -> None:
    outliers, why = read_outliers(run_dir)
    assert outliers is not None, why
    sinks = outliers["attention_sinks"]
    root = zarr.open_group(run_dir / "store.zarr", mode="r")
    expected_shares = []
    for layer in range(LAYERS):
        sink = np.asarray(root[f"metrics/layer_{layer}.attn/sink"][:])  # type: ignore[index]
        mean = sink.astype(np.float64).mean(axis=0)  # every query position of every sequence
        entry = sinks["layers"][layer]
        assert entry["layer"] == layer
        np.testing.assert_allclose(entry["mean_sink"], mean, rtol=1e-6)
        expected_shares.append(float(np.mean(mean > 0.3)))
    assert [e["sink_share"] for e in sinks["layers"]] == expected_shares
    first = next((i for i, share in enumerate(expected_shares) if share >= 0.5), None)
    assert sinks["first_sink_layer"] == first
    assert sinks["seq_len"] == 32 and sinks["comparable_to_gu"] is False
    assert sinks["every_resid_post"] is True
    assert sinks["first_massive_layer"] == outliers["first_massive_layer"]


def test_the_first_sink_layer_against_the_first_massive_layer() -> None:
    assert relation(5, 5) == "the first massive layer"
    assert relation(6, 5) == "the layer after the first massive layer"
    assert relation(3, 11) == "neither: -8 layers from the first massive layer"
    assert relation(None, 2) is None and relation(2, None) is None


def test_sink_and_attn_entropy_are_fitted_per_head(run_dir: Path) -> None:
    import json

    stored = json.loads((run_dir / "fits.json").read_text())
    records = head_fits(stored)
    assert not any(".attn" in point for table in parse_records(stored) for point in table)
    for layer in range(LAYERS):
        point = records[f"layer_{layer}.attn"]
        assert set(point) == {"sink", "attn_entropy"}
        for metric in ("sink", "attn_entropy"):
            heads = point[metric]
            assert isinstance(heads, list)
            assert [record.channel for record in heads] == list(range(HEADS))
            # fit's default skips position 0: 8 sequences of 31 tokens per head
            assert all(record.n + (record.n_dropped or 0) == 8 * 31 for record in heads)


def test_figures_and_report_paragraph(run_dir: Path) -> None:
    _invoke("plot", "--out", str(run_dir), "--points", "layer_0", "--metrics", "max_abs")
    for name in ("attention_sinks", "sink_share"):
        assert (run_dir / "plots" / f"{name}.png").stat().st_size > 10_000
    assert attention_sinks_figure({"points": {}}) is None
    assert sink_share_figure({"attention_sinks": None}) is None
    outliers, _ = read_outliers(run_dir)
    assert outliers is not None
    figures = outlier_figures(outliers)
    assert {"attention_sinks", "sink_share"} <= {f.name for f in figures}
    markdown = "\n".join(outliers_markdown(outliers, None, figures, "assets"))
    html = outliers_html(outliers, None, figures)
    for text in (markdown, html):
        assert "Attention sinks (Gu et al. 2025)" in text
        assert "so compare only a run at --seq-len 64" in text  # T = 32 here
    assert "assets/sink_share.png" in markdown and "assets/attention_sinks.png" in markdown


def test_compare_reads_sink_shares_by_relative_depth() -> None:
    data = {
        "attention_sinks": {
            "layers": [
                {"layer": 0, "sink_share": 0.0},
                {"layer": 3, "sink_share": 0.75},
                {"layer": 2, "sink_share": None},  # malformed entries are left out
                "junk",
            ]
        }
    }
    assert read_sink_shares(data, n_layers=4) == ((0.0, 0.0), (1.0, 0.75))
    assert read_sink_shares({}, n_layers=4) == ()
    figure = sink_by_depth_figure([(0, "run a", ((0.0, 0.0), (1.0, 0.75))), (1, "run b", ())])
    assert len(figure.axes[0].lines) == 3  # two runs and the 50 % line

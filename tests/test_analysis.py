"""`zipfstage.open_run` and `zipfstage export`: the notebook view of a run agrees with the readers
every stage uses, and the exported table with the stored records."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import zipfstage
from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.records import FitRecord
from zipfstage.report.verdict import clauset_verdict
from zipfstage.store import open_store
from zipfstage.store.fits import read_fit_records

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "run"
    make_synthetic_store(out)
    write_synthetic_fits(out)
    return out


def test_fits_frame_holds_every_stored_record_with_its_verdict(fitted: Path) -> None:
    run = zipfstage.open_run(fitted)
    frame = run.fits
    records = read_fit_records(fitted)
    expected = sum(
        len(r) if isinstance(r, list) else 1 for m in records.values() for r in m.values()
    )
    assert len(frame) == expected
    for point, by_metric in records.items():
        for metric, stored in by_metric.items():
            for record in stored if isinstance(stored, list) else [stored]:
                rows = frame[(frame.point == point) & (frame.metric == metric)]
                if isinstance(stored, list):
                    rows = rows[rows.channel == record["channel"]]
                assert len(rows) == 1
                row = rows.iloc[0]
                fit = FitRecord.from_record(point, metric, record)
                assert row.status == fit.status and row.verdict == clauset_verdict(fit).kind
                if fit.ok:
                    assert row.alpha == record["alpha"] and row.xmin == record["xmin"]
                    assert row.alpha_ci_low == record["alpha_ci"][0]
                    lognormal = record["comparisons"]["lognormal"]
                    assert row.R_lognormal == lognormal["R"] and row.p_lognormal == lognormal["p"]
                else:
                    assert pd.isna(row.alpha)
    assert set(frame.verdict) >= {"plausible", "ruled-out", "untested", "failed"}


def test_metric_and_tokens_are_the_committed_rows(fitted: Path) -> None:
    run = zipfstage.open_run(fitted)
    reader = open_store(fitted)
    positions = reader.positions()
    values = run.metric("layer_1", "rms")
    np.testing.assert_array_equal(values, reader.metric("layer_1", "rms")[positions >= 1])
    assert values.size == int((positions >= 1).sum())
    np.testing.assert_array_equal(
        run.metric("embed", "rms", skip_positions=0), reader.metric("embed", "rms")
    )
    tokens = run.tokens()
    np.testing.assert_array_equal(tokens["id"].to_numpy(), reader.token_ids())
    np.testing.assert_array_equal(tokens["position"].to_numpy(), positions)
    assert run.outliers is None  # no outlier analysis in this run
    assert "Run(" in repr(run) and f"{reader.n_tokens:,} tokens" in repr(run)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_the_same_table(fitted: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"table.{fmt}"
    result = runner.invoke(
        app, ["export", "--out", str(fitted), "--format", fmt, "--to", str(target)]
    )
    assert result.exit_code == 0, result.output
    frame = zipfstage.open_run(fitted).fits
    assert f"wrote {len(frame):,} fits" in result.output
    if fmt == "csv":
        with target.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["point"] for r in rows] == list(frame.point)
        alphas = [float(r["alpha"]) if r["alpha"] else np.nan for r in rows]
    else:
        table = pq.read_table(target).to_pandas()
        assert list(table.columns[:4]) == ["point", "layer", "site", "metric"]
        alphas = list(table.alpha)
    np.testing.assert_array_equal(np.array(alphas, dtype=float), frame.alpha.to_numpy(dtype=float))
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_refuses_an_unknown_format_and_a_run_without_fits(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    make_synthetic_store(bare, n_batches=1)
    refused = runner.invoke(app, ["export", "--out", str(bare)])
    assert refused.exit_code == 2 and "run `zipfstage fit" in refused.output
    wrong = runner.invoke(app, ["export", "--out", str(bare), "--format", "xlsx"])
    assert wrong.exit_code == 2 and "unknown export format 'xlsx'" in wrong.output
    assert not list(bare.glob("fits.*"))


@pytest.mark.parametrize("url", ["s3://bucket/run", "gs://x", "https://example.org/run"])
@pytest.mark.parametrize("command", ["collect", "fit", "report"])
def test_url_run_paths_are_refused_in_one_line(
    url: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [command, "--out", url])
    assert result.exit_code == 2, result.output
    assert "is a URL" in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no ./s3:/bucket/run folder


def test_compare_refuses_a_run_given_twice(fitted: Path, tmp_path: Path) -> None:
    same = runner.invoke(app, ["compare", str(fitted), str(fitted), "--out", str(tmp_path / "c")])
    assert same.exit_code == 2 and "is the same folder as" in same.output
    copy = tmp_path / "copy"
    shutil.copytree(fitted, copy)
    copied = runner.invoke(app, ["compare", str(fitted), str(copy), "--out", str(tmp_path / "c")])
    assert copied.exit_code == 2 and "is a copy of the store in" in copied.output
    assert not (tmp_path / "c").exists()


def test_yaml_values_are_type_checked_even_when_the_command_line_sets_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("collect:\n  max_tokens: lots\n")
    result = runner.invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 2 and "collect.max_tokens" in result.output
    out = tmp_path / "r"
    overridden = runner.invoke(
        app, ["collect", "--config", str(config), "--out", str(out), "--max-tokens", "512"]
    )
    assert overridden.exit_code == 2, overridden.output
    assert f"config file {config}: invalid setting collect.max_tokens" in overridden.output
    assert not out.exists()


@pytest.mark.parametrize(
    "content",
    ["Caf\u00e9 cr\u00e8me, na\u00efve r\u00e9sum\u00e9.".encode("latin-1"), bytes(range(256))],
    ids=["latin-1", "random-bytes"],
)
def test_text_that_is_not_utf8_is_refused_before_anything_is_written(
    content: bytes, tiny_llama: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content * 50)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--data", str(corpus), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert f"{corpus} is not UTF-8 text" in " ".join(result.output.split())
    assert not out.exists()
    assert len(result.output.strip().splitlines()) <= 2  # one message (wrapped at most once)


def test_readme_notebook_cell_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### In a notebook") :]
    start = section.index("```python\n") + len("```python\n")
    cell = section[start : section.index("\n```", start)]
    run_dir = tmp_path / "results"
    make_synthetic_store(run_dir, points=("embed", "layer_15", "layer_29"))
    write_synthetic_fits(run_dir, failed=None)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(cell, "README.md", "exec"), scope)
    assert isinstance(scope["fits"], pd.DataFrame) and len(scope["fits"]) > 0
    assert np.asarray(scope["x"]).size == int((open_store(run_dir).positions() >= 1).sum())

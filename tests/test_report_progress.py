"""The report's progress bar: one bar over both drawing passes, never back to 0, ending full."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.plotting.jobs import RunData
from zipfstage.report import figures
from zipfstage.report.figures import report_figures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("progress_run")
    make_synthetic_store(out, metrics=("rms", "max_abs"), n_batches=1, batch_size=2, seq_len=128)
    write_synthetic_fits(out, bootstrap=False, failed=None)
    return out


def _calls(run_dir: Path, assets: Path, limit_mb: float) -> tuple[list[tuple[int, int]], int]:
    calls: list[tuple[int, int]] = []
    figures, _ = report_figures(
        RunData.load(run_dir), assets, set(), limit_mb, workers=1,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    return calls, sum(bool(f.png) for f in figures)


def _assert_one_bar(calls: list[tuple[int, int]]) -> None:
    done = [d for d, _ in calls]
    assert done == sorted(done), f"the bar went back: {calls}"
    assert all(0 <= d <= t for d, t in calls), calls
    assert calls[-1][0] == calls[-1][1], f"the bar did not end full: {calls[-1]}"


@pytest.mark.parametrize("limit_mb", [1000.0, 0.0], ids=["both passes", "second pass skipped"])
def test_one_bar_over_both_passes(
    run_dir: Path, tmp_path: Path, limit_mb: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a spread of one point per metric leaves CCDFs for the second pass, as in a large run
    monkeypatch.setattr(figures, "selected_points", lambda points, metric, table: points[:1])
    calls, embedded = _calls(run_dir, tmp_path / "assets", limit_mb)
    _assert_one_bar(calls)
    assert calls[-1][1] >= embedded > 0
    if limit_mb:  # every figure drawn, in two passes: the bar counted each one once
        assert calls[-1] == (embedded, embedded)
        assert calls[0] == (0, embedded)
    again, _ = _calls(run_dir, tmp_path / "assets", limit_mb)  # all kept: nothing to draw
    _assert_one_bar(again)

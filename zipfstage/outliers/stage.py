"""The outlier stage: after `fit` (the fit command and the demo run it), on the top-k arrays."""

from __future__ import annotations

import time
from pathlib import Path

from zipfstage.config import OutlierSettings
from zipfstage.outliers.analysis import run_outlier_analysis
from zipfstage.stage import Progress, StageResult
from zipfstage.store.lock import holds_reading_lock


@holds_reading_lock
def run(settings: OutlierSettings, run_dir: Path, progress: Progress | None = None) -> StageResult:
    """Write DIR/outliers.json; a note instead when the store has no top-k arrays."""
    started = time.perf_counter()
    path = run_outlier_analysis(run_dir, settings, progress)
    seconds = time.perf_counter() - started
    if path is None:
        return StageResult(
            stage="outliers",
            summary="no outlier analysis: the store has no top-k arrays (collect with --topk)",
            seconds=seconds,
        )
    return StageResult(
        stage="outliers",
        summary=f"outlier channels in {path}",
        outputs=(path,),
        seconds=seconds,
    )

"""The plot stage: the figures of the selected points and metrics, written under DIR/plots/.

`--figures summary` (the default) draws what a reader looks at, bounded whatever the run's size:
the dashboards, the channel heatmap, each metric's depth overlay, the outlier figures, and CCDFs
for the fits the report's summary names plus a few points per metric. `--figures all` adds a CCDF,
a rank-frequency plot and xmin diagnostics for every (point, metric).
"""

from __future__ import annotations

import time
from pathlib import Path

from zipfstage.config import PlotSettings
from zipfstage.plotting import style
from zipfstage.plotting.jobs import OUTLIER_KINDS, PER_FIT, FigureJob, RunData
from zipfstage.plotting.render import render
from zipfstage.plotting.selection import named_fits, selected_points
from zipfstage.records import CHANNEL_WISE, FitRecord, FitTable, lookup
from zipfstage.stage import Progress, StageResult
from zipfstage.store.layout import RunFolder
from zipfstage.store.lock import holds_reading_lock


@holds_reading_lock
def run(
    settings: PlotSettings,
    run_dir: Path,
    progress: Progress | None = None,
    *,
    force: bool = False,
) -> StageResult:
    """Draw the figures whose inputs changed (all with `force`); reads only the store and fits.
    Raises ZipfstageError on bad input."""
    started = time.perf_counter()
    data = RunData.load(run_dir)
    points, metrics = data.reader.select(settings.points, settings.metrics)
    jobs, notes = plot_jobs(settings, data, points, metrics)
    directory = RunFolder.at(run_dir).plots
    rendered = render(
        data,
        jobs,
        directory,
        style.extensions(settings.format),
        workers=settings.workers,
        force=force,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    files = rendered.paths
    return StageResult(
        stage="plot",
        summary=(
            f"wrote {len(files)} figures under {directory} ({rendered.drawn} drawn, "
            f"{rendered.kept} unchanged) in {seconds:.1f} s"
        ),
        outputs=tuple(files),
        notes=tuple(notes),
        seconds=seconds,
        counts={"figures": len(files), "drawn": rendered.drawn, "kept": rendered.kept},
    )


def plot_jobs(
    settings: PlotSettings, data: RunData, points: list[str], metrics: list[str]
) -> tuple[list[FigureJob], list[str]]:
    """Every figure the settings ask for, overview first; and notes on what cannot be drawn."""
    dpi, rows, columns = settings.dpi, tuple(points), tuple(metrics)
    jobs = [
        FigureJob("dashboard", f"{q}_dashboard", dpi, points=rows, metrics=columns, quantity=q)
        for q in ("alpha", "slope")
    ]
    notes = []
    if CHANNEL_WISE in metrics:
        if any(data.channels.get(p) for p in points):
            jobs.append(FigureJob("channel_heatmap", "channel_heatmap", dpi, points=rows))
        else:
            notes.append("skipped channel_heatmap: no channel_wise fits")
    jobs += [FigureJob(kind, kind, dpi) for kind in OUTLIER_KINDS]
    scalars = [m for m in metrics if m != CHANNEL_WISE]
    kinds = PER_FIT if settings.figures == "all" else ("ccdf",)
    named = {(f.point, f.metric) for f in named_fits(_fits(data.table, points, scalars))}
    for metric in scalars:
        jobs.append(FigureJob("multi_layer", f"multi_layer/{metric}", dpi, metric=metric,
                              points=rows))  # fmt: skip
        if settings.figures == "all":
            chosen = set(points)
        else:
            chosen = set(selected_points(points, metric, data.table, settings.per_metric))
            chosen |= {p for p, m in named if m == metric}
        jobs += [
            FigureJob(kind, f"{kind}/{point}__{metric}", dpi, point=point, metric=metric)
            for point in points
            if point in chosen
            for kind in kinds
        ]
    return jobs, notes


def _fits(table: FitTable, points: list[str], metrics: list[str]) -> list[FitRecord]:
    return [lookup(table, p, m) for p in points for m in metrics]

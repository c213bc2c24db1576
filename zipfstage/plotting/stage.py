"""The plot stage: every figure for the selected points and metrics, written under DIR/plots/."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from zipfstage.config import PlotSettings
from zipfstage.outliers.analysis import read_outliers
from zipfstage.plotting import style
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.dashboards import channel_heatmap_figure, dashboard_figure
from zipfstage.plotting.diagnostics import diagnostics_figure
from zipfstage.plotting.hill_tail import hill_tail_figure
from zipfstage.plotting.massive import massive_figure
from zipfstage.plotting.multi_layer import multi_layer_figure
from zipfstage.plotting.outlier_channels import outlier_channels_figure
from zipfstage.plotting.rank_frequency import rank_frequency_figure
from zipfstage.plotting.samples import SampleCache
from zipfstage.records import CHANNEL_WISE, ChannelFits, FitTable, lookup
from zipfstage.stage import Progress, StageResult
from zipfstage.store.fits import read_fit_curves, read_fitted_store
from zipfstage.store.layout import RunFolder
from zipfstage.store.lock import holds_reading_lock


@dataclass
class _Saver:
    """Saves figures under one folder in the chosen formats and remembers what it wrote."""

    directory: Path
    extensions: tuple[str, ...]
    dpi: int
    written: list[Path] = field(default_factory=list)

    def __call__(self, figure: Figure, relative: str) -> None:
        stem = self.directory / relative
        self.written += style.save_figure(figure, stem, self.extensions, self.dpi)


@holds_reading_lock
def run(settings: PlotSettings, run_dir: Path, progress: Progress | None = None) -> StageResult:
    """Draw every figure; reads only the store and its fits. Raises ZipfstageError on bad input."""
    started = time.perf_counter()
    reader, table, channels = read_fitted_store(run_dir)
    points, metrics = reader.select(settings.points, settings.metrics)
    save = _Saver(RunFolder.at(run_dir).plots, style.extensions(settings.format), settings.dpi)
    scalars = [m for m in metrics if m != CHANNEL_WISE]
    cache = SampleCache(reader, table)
    for done, metric in enumerate(scalars):
        if progress:
            progress(done, len(scalars) + 1)
        _metric_figures(save, cache, run_dir, metric, points)
        cache.drop_metric(metric)
    notes = _overview_figures(save, run_dir, points, metrics, table, channels)
    if progress:
        progress(len(scalars) + 1, len(scalars) + 1)
    seconds = time.perf_counter() - started
    return StageResult(
        stage="plot",
        summary=f"wrote {len(save.written)} figures under {save.directory} in {seconds:.1f} s",
        outputs=tuple(save.written),
        notes=tuple(notes),
        seconds=seconds,
        counts={"figures": len(save.written)},
    )


def _metric_figures(
    save: _Saver, cache: SampleCache, run_dir: Path, metric: str, points: list[str]
) -> None:
    """Rank-frequency, CCDF and diagnostics per point, then the depth overlay of one metric."""
    rows = []
    for point in points:
        fit = lookup(cache.table, point, metric)
        sample = cache.get(point, metric)
        rows.append((point, sample, fit))
        name = f"{point}__{metric}"
        save(rank_frequency_figure(sample, fit), f"rank_frequency/{name}")
        save(ccdf_figure(sample, fit), f"ccdf/{name}")
        curves = read_fit_curves(run_dir, point, metric)
        save(diagnostics_figure(fit, curves), f"diagnostics/{name}")
    save(multi_layer_figure(metric, rows), f"multi_layer/{metric}")


def _overview_figures(
    save: _Saver,
    run_dir: Path,
    points: list[str],
    metrics: list[str],
    table: FitTable,
    channels: ChannelFits,
) -> list[str]:
    """The dashboards and the channel heatmap; returns notes on what could not be drawn."""
    for quantity in ("alpha", "slope"):
        save(dashboard_figure(quantity, points, metrics, table, channels), f"{quantity}_dashboard")
    _outlier_figures(save, run_dir)
    if CHANNEL_WISE not in metrics:
        return []
    if any(channels.get(p) for p in points):
        save(channel_heatmap_figure(points, channels), "channel_heatmap")
        return []
    return ["skipped channel_heatmap: no channel_wise fits"]


def _outlier_figures(save: _Saver, run_dir: Path) -> None:
    """Sun's massive-activation figure, the top-1 channel map and Hill tails, when analysed."""
    outliers = read_outliers(run_dir)[0] or {}
    for name, draw in (
        ("massive_activations", massive_figure),
        ("outlier_channels", outlier_channels_figure),
        ("hill_tail", hill_tail_figure),
    ):
        if (drawn := draw(outliers)) is not None:
            save(drawn, name)

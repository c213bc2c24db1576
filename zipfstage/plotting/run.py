"""`zipfstage plot`: every figure for the selected points and metrics, written under DIR/plots/."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from zipfstage.outliers.analysis import read_outliers
from zipfstage.plotting import style
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.dashboards import channel_heatmap_figure, dashboard_figure
from zipfstage.plotting.data import SampleCache
from zipfstage.plotting.diagnostics import diagnostics_figure
from zipfstage.plotting.hill_tail import hill_tail_figure
from zipfstage.plotting.massive import massive_figure
from zipfstage.plotting.multi_layer import multi_layer_figure
from zipfstage.plotting.outlier_channels import outlier_channels_figure
from zipfstage.plotting.rank_frequency import rank_frequency_figure
from zipfstage.plotting.records import lookup, parse_records
from zipfstage.store.fits import read_fit_curves, read_fit_records, require_current_fits
from zipfstage.store.layout import CHANNEL_WISE
from zipfstage.store.reader import open_store

PLOTS_DIR = "plots"


@dataclass
class PlotResult:
    """What a plot run wrote, and how long it took."""

    directory: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plots_dir(out_dir: Path) -> Path:
    return Path(out_dir) / PLOTS_DIR


def plot_run(
    out_dir: Path,
    fmt: str = "png",
    dpi: int = 150,
    points: list[str] | None = None,
    metrics: list[str] | None = None,
) -> PlotResult:
    """Draw every figure; reads only the store and its fits. Raises ZipfstageError on bad input."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    reader = open_store(out_dir)
    reader.require_data()
    records = read_fit_records(out_dir)
    require_current_fits(out_dir, records, reader.n_tokens)
    table, channels = parse_records(records)
    chosen_points, chosen_metrics = reader.select(points or ["all"], metrics or ["all"])
    scalars = [m for m in chosen_metrics if m != CHANNEL_WISE]
    exts = style.extensions(fmt)
    result = PlotResult(directory=plots_dir(out_dir))

    def save(figure: Figure, relative: str) -> None:
        result.written += style.save_figure(figure, result.directory / relative, exts, dpi)

    cache = SampleCache(reader, table)
    for metric in scalars:
        rows = []
        for point in chosen_points:
            fit = lookup(table, point, metric)
            sample = cache.get(point, metric)
            rows.append((point, sample, fit))
            name = f"{point}__{metric}"
            save(rank_frequency_figure(sample, fit), f"rank_frequency/{name}")
            save(ccdf_figure(sample, fit), f"ccdf/{name}")
            curves = read_fit_curves(out_dir, point, metric)
            save(diagnostics_figure(fit, curves), f"diagnostics/{name}")
        save(multi_layer_figure(metric, rows), f"multi_layer/{metric}")
        cache.drop_metric(metric)
    for quantity in ("alpha", "slope"):
        figure = dashboard_figure(quantity, chosen_points, chosen_metrics, table, channels)
        save(figure, f"{quantity}_dashboard")
    if CHANNEL_WISE in chosen_metrics and any(channels.get(p) for p in chosen_points):
        save(channel_heatmap_figure(chosen_points, channels), "channel_heatmap")
    elif CHANNEL_WISE in chosen_metrics:
        result.skipped.append("channel_heatmap: no channel_wise fits")
    outliers = read_outliers(out_dir)[0] or {}
    for name, draw in (
        ("massive_activations", massive_figure),
        ("outlier_channels", outlier_channels_figure),
        ("hill_tail", hill_tail_figure),
    ):
        if (drawn := draw(outliers)) is not None:
            save(drawn, name)
    result.seconds = time.perf_counter() - started
    return result

"""One figure to draw as plain data (`FigureJob`), and drawing it from a run's store and fits.

A job names what it draws, never the data, so it pickles in bytes to a worker process, which
reads the samples itself; `plot` and `report` both describe their figures as jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from zipfstage.outliers.analysis import read_outliers
from zipfstage.plotting.attention_sinks import attention_sinks_figure, sink_share_figure
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.dashboards import channel_heatmap_figure, dashboard_figure
from zipfstage.plotting.diagnostics import diagnostics_figure
from zipfstage.plotting.hill_tail import hill_tail_figure
from zipfstage.plotting.massive import massive_figure
from zipfstage.plotting.multi_layer import multi_layer_figure
from zipfstage.plotting.outlier_channels import outlier_channels_figure
from zipfstage.plotting.rank_frequency import rank_frequency_figure
from zipfstage.plotting.samples import SampleCache
from zipfstage.records import ChannelFits, FitTable, lookup
from zipfstage.store.fits import read_fit_curves, read_fitted_store
from zipfstage.store.reader import StoreReader

#: per-(point, metric) figures: they read one sample and one fit
PER_FIT = ("ccdf", "rank_frequency", "diagnostics")
#: figures of the outlier analysis (outliers.json); each may have nothing to draw
OUTLIER_KINDS = (
    "massive_activations",
    "outlier_channels",
    "hill_tail",
    "attention_sinks",
    "sink_share",
)


@dataclass(frozen=True)
class FigureJob:
    """One figure: its kind, its file stem under the output folder, and what it shows.

    `point` and `metric` name a per-fit figure; `points` and `metrics` the rows and columns of a
    depth overlay or dashboard; `quantity` a dashboard's ("alpha" or "slope").
    """

    kind: str
    name: str
    dpi: int
    point: str | None = None
    metric: str | None = None
    points: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    quantity: str | None = None


@dataclass
class RunData:
    """What a drawing process reads once and shares between its jobs."""

    run_dir: Path
    reader: StoreReader
    table: FitTable
    channels: ChannelFits
    outliers: dict[str, Any]

    @classmethod
    def load(cls, run_dir: Path) -> RunData:
        reader, table, channels = read_fitted_store(run_dir)
        return cls(run_dir, reader, table, channels, read_outliers(run_dir)[0] or {})


def draw(job: FigureJob, data: RunData, cache: SampleCache) -> Figure | None:
    """The job's figure, or None when there is nothing to draw (an outlier figure without data)."""
    return _DRAWERS[job.kind](job, data, cache)


def _per_fit(job: FigureJob, data: RunData, cache: SampleCache) -> Figure:
    point, metric = job.point or "", job.metric or ""
    fit = lookup(data.table, point, metric)
    if job.kind == "diagnostics":
        return diagnostics_figure(fit, read_fit_curves(data.run_dir, point, metric))
    draw_fit = ccdf_figure if job.kind == "ccdf" else rank_frequency_figure
    return draw_fit(cache.get(point, metric), fit)


def _depth(job: FigureJob, data: RunData, cache: SampleCache) -> Figure:
    metric = job.metric or ""
    rows = [(p, cache.get(p, metric), lookup(data.table, p, metric)) for p in job.points]
    return multi_layer_figure(metric, rows)


def _dashboard(job: FigureJob, data: RunData, cache: SampleCache) -> Figure:
    points, metrics = list(job.points), list(job.metrics)
    return dashboard_figure(job.quantity or "alpha", points, metrics, data.table, data.channels)


def _channel_heatmap(job: FigureJob, data: RunData, cache: SampleCache) -> Figure:
    return channel_heatmap_figure(list(job.points), data.channels)


def _outlier(draw_outliers: Callable[[dict[str, Any]], Figure | None]) -> _Drawer:
    def drawer(job: FigureJob, data: RunData, cache: SampleCache) -> Figure | None:
        return draw_outliers(data.outliers)

    return drawer


_Drawer = Callable[[FigureJob, RunData, SampleCache], Figure | None]

_DRAWERS: dict[str, _Drawer] = {
    **dict.fromkeys(PER_FIT, _per_fit),
    "multi_layer": _depth,
    "dashboard": _dashboard,
    "channel_heatmap": _channel_heatmap,
    "massive_activations": _outlier(massive_figure),
    "outlier_channels": _outlier(outlier_channels_figure),
    "hill_tail": _outlier(hill_tail_figure),
    "attention_sinks": _outlier(attention_sinks_figure),
    "sink_share": _outlier(sink_share_figure),
}

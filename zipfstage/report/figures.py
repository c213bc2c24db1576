"""The report's figures, drawn with the plot stage's own functions and kept as PNG bytes."""

from __future__ import annotations

from dataclasses import dataclass

from zipfstage.plotting import style
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.dashboards import channel_heatmap_figure, dashboard_figure
from zipfstage.plotting.multi_layer import multi_layer_figure
from zipfstage.plotting.samples import SampleCache
from zipfstage.records import CHANNEL_WISE, ChannelFits, FitTable, lookup
from zipfstage.report import names
from zipfstage.store.reader import StoreReader

REPORT_DPI = 100
#: wide figures are shown at the page's full width: drawn denser so they are not upscaled
WIDE_DPI = 150


@dataclass(frozen=True)
class ReportFigure:
    """One embedded image: `name` is also its file name next to report.md; a `wide` one spans
    the page (dashboards, heatmaps: their cells need the room)."""

    section: str
    name: str
    title: str
    png: bytes
    wide: bool = False


def report_figures(
    reader: StoreReader, table: FitTable, channels: ChannelFits, dpi: int = REPORT_DPI
) -> list[ReportFigure]:
    """Dashboards, the per-channel heatmap, each metric's CCDFs by depth, each fit's CCDF."""
    points, metrics = reader.points, reader.metrics
    wide_dpi = round(dpi * WIDE_DPI / REPORT_DPI)
    figures = [
        ReportFigure(
            "dashboards",
            name,
            title,
            style.png_bytes(dashboard_figure(q, points, metrics, table, channels), wide_dpi),
            wide=True,
        )
        for q, name, title in (
            ("alpha", names.ALPHA_DASHBOARD, "Power-law exponent \u03b1"),
            ("slope", names.SLOPE_DASHBOARD, "Rank\u2013frequency OLS slope"),
        )
    ]
    if CHANNEL_WISE in metrics and any(channels.get(p) for p in points):
        figures.append(
            ReportFigure(
                "dashboards",
                names.CHANNEL_HEATMAP,
                "Per-channel fits",
                style.png_bytes(channel_heatmap_figure(points, channels), wide_dpi),
                wide=True,
            )
        )
    cache = SampleCache(reader, table)
    for metric in reader.scalar_metrics:
        rows = [(p, cache.get(p, metric), lookup(table, p, metric)) for p in points]
        figures.append(
            ReportFigure(
                "depth",
                names.depth_name(metric),
                f"{metric}: CCDF by depth",
                style.png_bytes(multi_layer_figure(metric, rows), dpi),
            )
        )
        for point, sample, fit in rows:
            png = style.png_bytes(ccdf_figure(sample, fit), dpi)
            title = f"{point} \u00b7 {metric}"
            figures.append(ReportFigure("ccdf", names.ccdf_name(point, metric), title, png))
        cache.drop_metric(metric)
    return figures

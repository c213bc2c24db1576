"""The report's figures, drawn with the plot stage's own jobs into report_files/ (in a process
pool, skipping those whose inputs did not change), then embedded in report.html or linked.

report.html stays one self-contained file while its figures' PNGs total at most `embed_mb`;
above that (a large run's thousands of CCDFs) it embeds the summary figures (dashboards, the
channel heatmap, depth overlays, the CCDFs the summary names, the outlier figures) and shows the
other CCDFs from report_files/ beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from zipfstage.plotting.jobs import FigureJob, RunData
from zipfstage.plotting.render import render
from zipfstage.records import CHANNEL_WISE
from zipfstage.report import names
from zipfstage.stage import Progress
from zipfstage.store.layout import REPORT_ASSETS

REPORT_DPI = 100
#: wide figures are shown at the page's full width: drawn denser so they are not upscaled
WIDE_DPI = 150
#: sections whose figures a large report links instead of embedding (unless the summary names one)
LINKED_SECTIONS = frozenset({"ccdf"})
MB = 1_000_000


@dataclass(frozen=True)
class ReportFigure:
    """One image: `name` is also its file name in report_files/ and its anchor; a `wide` one spans
    the page (dashboards, heatmaps: their cells need the room). `link`, when set, is the image's
    path relative to report.html, shown from there instead of embedding `png`."""

    section: str
    name: str
    title: str
    png: bytes
    wide: bool = False
    link: str | None = None


@dataclass(frozen=True)
class _Planned:
    job: FigureJob
    section: str
    title: str
    wide: bool = False


def report_figures(
    data: RunData,
    assets: Path,
    workers: int = 0,
    progress: Progress | None = None,
    dpi: int = REPORT_DPI,
) -> list[ReportFigure]:
    """Dashboards, the per-channel heatmap, each metric's CCDFs by depth, each fit's CCDF; drawn
    into `assets` as PNG (unchanged ones kept) and read back."""
    planned = _plan(data, dpi)
    jobs = [p.job for p in planned]
    rendered = render(data, jobs, assets, ("png",), workers=workers, progress=progress)
    return [
        ReportFigure(
            p.section, p.job.name, p.title, rendered.files[p.job.name][0].read_bytes(), p.wide
        )
        for p in planned
    ]


def _plan(data: RunData, dpi: int) -> list[_Planned]:
    points, metrics = tuple(data.reader.points), tuple(data.reader.metrics)
    wide_dpi = round(dpi * WIDE_DPI / REPORT_DPI)
    planned = [
        _Planned(
            FigureJob("dashboard", name, wide_dpi, points=points, metrics=metrics, quantity=q),
            "dashboards",
            title,
            wide=True,
        )
        for q, name, title in (
            ("alpha", names.ALPHA_DASHBOARD, "Power-law exponent \u03b1"),
            ("slope", names.SLOPE_DASHBOARD, "Rank\u2013frequency OLS slope"),
        )
    ]
    if CHANNEL_WISE in metrics and any(data.channels.get(p) for p in points):
        job = FigureJob("channel_heatmap", names.CHANNEL_HEATMAP, wide_dpi, points=points)
        planned.append(_Planned(job, "dashboards", "Per-channel fits", wide=True))
    for metric in data.reader.scalar_metrics:
        job = FigureJob("multi_layer", names.depth_name(metric), dpi, metric=metric, points=points)
        planned.append(_Planned(job, "depth", f"{metric}: CCDF by depth"))
        planned += [
            _Planned(
                FigureJob("ccdf", names.ccdf_name(p, metric), dpi, point=p, metric=metric),
                "ccdf",
                f"{p} \u00b7 {metric}",
            )
            for p in points
        ]
    return planned


def embed_or_link(
    figures: list[ReportFigure], named: set[str], limit_mb: float
) -> tuple[list[ReportFigure], str | None]:
    """All figures embedded while their PNGs total at most `limit_mb`; else the per-fit CCDFs the
    summary does not name become links into report_files/. Returns the figures and a note."""
    total = sum(len(f.png) for f in figures)
    if total <= limit_mb * MB:
        return figures, None
    shown = []
    for figure in figures:
        if figure.section in LINKED_SECTIONS and figure.name not in named:
            figure = replace(figure, png=b"", link=asset_link(figure.name))
        shown.append(figure)
    n_linked = sum(f.link is not None for f in shown)
    note = (
        f"the figures total {total / MB:.0f} MB, over the {limit_mb:g} MB this page embeds: it "
        f"embeds the summary figures and shows the other {n_linked:,} CCDFs from the folder "
        f"{REPORT_ASSETS}/ beside it (keep the two together)"
    )
    return shown, note


def asset_link(name: str) -> str:
    """A figure's file in report_files/, as a URL relative to report.html."""
    return quote(f"{REPORT_ASSETS}/{name}.png")

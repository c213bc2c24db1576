"""The report's figures, drawn with the plot stage's own jobs into report_files/ (in a process
pool, skipping those whose inputs did not change), then embedded in report.html or linked.

report.html stays one self-contained file while its figures' PNGs would total at most
`embed_mb`; above that (a large run's thousands of CCDFs) it embeds the summary figures
(dashboards, the channel heatmap, depth overlays, the CCDFs the summary names, the outlier
figures), shows a bounded spread of CCDFs per metric from report_files/ beside it, and leaves
the rest to `zipfstage plot --figures all`, so report's time and size stay bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from zipfstage.plotting.jobs import FigureJob, RunData
from zipfstage.plotting.render import render
from zipfstage.plotting.selection import selected_points
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
    named: set[str],
    limit_mb: float,
    workers: int = 0,
    progress: Progress | None = None,
) -> tuple[list[ReportFigure], str | None]:
    """Dashboards, the per-channel heatmap, each metric's CCDFs by depth and each fit's CCDF,
    drawn into `assets` as PNG (unchanged ones kept) and read back; and a note when the page is
    not self-contained.

    The summary figures (and `named`) and a bounded spread of CCDFs per metric are drawn first;
    if every CCDF would bring the figures over `limit_mb`, the rest are not drawn and the spread
    is linked from `assets` instead of embedded.
    """
    planned = _plan(data, REPORT_DPI)
    spread = {
        (p, m)
        for m in data.reader.scalar_metrics
        for p in selected_points(data.reader.points, m, data.table)
    }
    first = [p for p in planned if p.section not in LINKED_SECTIONS or p.job.name in named
             or (p.job.point, p.job.metric) in spread]  # fmt: skip
    rest = [p for p in planned if p not in first]
    bar = _OneBar(progress, len(rest))
    figures = _drawn(data, first, assets, workers, bar.first)
    ccdfs = [len(f.png) for f in figures if f.section in LINKED_SECTIONS]
    estimate = sum(len(f.png) for f in figures) + len(rest) * (sum(ccdfs) / max(len(ccdfs), 1))
    if estimate <= limit_mb * MB:
        figures += _drawn(data, rest, assets, workers, bar.second)
        order = {p.job.name: i for i, p in enumerate(planned)}
        return sorted(figures, key=lambda f: order[f.name]), None
    linked = [
        replace(f, png=b"", link=asset_link(f.name))
        if f.section in LINKED_SECTIONS and f.name not in named
        else f
        for f in figures
    ]
    note = (
        f"with every CCDF the figures would take about {estimate / MB:.0f} MB, over the "
        f"{limit_mb:g} MB this page embeds: it embeds the summary figures and shows "
        f"{sum(f.link is not None for f in linked)} more CCDFs (a spread of depths per metric) "
        f"from the folder {REPORT_ASSETS}/ beside it (keep the two together)"
    )
    bar.finish()
    if rest:
        note += (
            f"; the other {len(rest):,} CCDFs are left out: `zipfstage plot --figures all` "
            "draws every one under plots/ccdf/"
        )
    return linked, note


class _OneBar:
    """One progress bar over the two drawing passes (the first counts the second's figures as to
    come; a skipped second pass ends the bar where the first stopped), never restarting at 0."""

    def __init__(self, progress: Progress | None, second_jobs: int) -> None:
        self.progress = progress
        self.second_jobs = second_jobs
        self.first_total = 0

    def first(self, done: int, total: int) -> None:
        self.first_total = total
        if self.progress:
            self.progress(done, total + self.second_jobs)

    def second(self, done: int, total: int) -> None:
        if self.progress:
            self.progress(self.first_total + done, self.first_total + total)

    def finish(self) -> None:
        if self.progress:
            self.progress(self.first_total, self.first_total)


def _drawn(
    data: RunData,
    planned: list[_Planned],
    assets: Path,
    workers: int,
    progress: Progress | None,
) -> list[ReportFigure]:
    jobs = [p.job for p in planned]
    rendered = render(data, jobs, assets, ("png",), workers=workers, progress=progress)
    return [
        ReportFigure(p.section, p.job.name, p.title, _png(rendered.files[p.job.name]), p.wide)
        for p in planned
    ]


def _png(paths: list[Path]) -> bytes:
    return paths[0].read_bytes()


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


def asset_link(name: str) -> str:
    """A figure's file in report_files/, as a URL relative to report.html."""
    return quote(f"{REPORT_ASSETS}/{name}.png")

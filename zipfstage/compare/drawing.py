"""Draw every comparison figure, save it under DIR/plots/ and keep a PNG for the HTML.

Only the CCDF overlays read metric arrays, and only at the three depths drawn (through the plot
stage's SampleCache: the fit's skipped positions, the same thinning), one metric at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from zipfstage.compare.content import OVERLAY_DEPTHS, CompareContent, SavedFigure
from zipfstage.compare.depth import nearest
from zipfstage.compare.figures import (
    Overlay,
    alpha_by_depth_figure,
    ccdf_overlay_figure,
    massive_by_depth_figure,
)
from zipfstage.compare.sinks import sink_by_depth_figure
from zipfstage.plotting.samples import SampleCache
from zipfstage.plotting.style import png_bytes, save_figure
from zipfstage.plotting.thinning import SortedSample
from zipfstage.records import lookup
from zipfstage.report.figures import ReportFigure

EMBED_DPI = 100
Tick = Callable[[], None]


def draw_all(
    content: CompareContent, plots: Path, exts: tuple[str, ...], dpi: int, tick: Tick
) -> None:
    def keep(figure: Figure, relative: str, title: str) -> None:
        files = save_figure(figure, plots / relative, exts, dpi)
        png = next((f.read_bytes() for f in files if f.suffix == ".png"), None)
        png = png or png_bytes(figure, EMBED_DPI)  # drawn once more only without a png on disk
        embedded = ReportFigure(relative.split("/")[0], relative, title, png)
        content.figures.append(SavedFigure(relative, files, embedded))
        tick()

    labels = [run.label for run in content.runs]
    caches = [SampleCache(run.reader, run.table) for run in content.runs]
    for metric in content.metrics:
        series = list(zip(labels, content.alpha[metric], strict=True))
        keep(
            alpha_by_depth_figure(metric, series),
            f"alpha_by_depth/{metric}",
            f"\u03b1 by depth \u00b7 {metric}",
        )
        for which, target in OVERLAY_DEPTHS.items():
            curves = _overlays(content, caches, metric, which, target)
            figure = ccdf_overlay_figure(metric, which, curves)
            keep(
                figure,
                f"ccdf_overlay/{metric}__{which}",
                f"{metric} \u00b7 CCDF at the {which} depth",
            )
        for cache in caches:
            cache.drop_metric(metric)
    massive = [
        (i, run.label, run.outliers.points) for i, run in enumerate(content.runs) if run.outliers
    ]
    if any(rows for _, _, rows in massive):
        keep(massive_by_depth_figure(massive), "massive_by_depth", "Massive activations by depth")
    sinks = [
        (i, run.label, run.outliers.sinks) for i, run in enumerate(content.runs) if run.outliers
    ]
    if any(shares for _, _, shares in sinks):  # named so the massive section shows it too
        keep(sink_by_depth_figure(sinks), "massive_by_depth_sinks", "Sink share by depth")


def _overlays(
    content: CompareContent, caches: list[SampleCache], metric: str, which: str, target: float
) -> list[tuple[int, Overlay]]:
    curves, used = [], []
    for index, (run, cache) in enumerate(zip(content.runs, caches, strict=True)):
        where = nearest(run.places, target)
        used.append(where.point if where else None)
        if where is None:
            continue
        sample = normalised(cache.get(where.point, metric))
        fit = lookup(run.table, where.point, metric)
        curves.append((index, Overlay(run.label, where.point, where.depth, sample, fit)))
    content.overlay_points.setdefault(metric, {})[which] = used
    return curves


def normalised(sample: SortedSample) -> SortedSample:
    """Values divided by the sample's median (read off the thinned ranks), so shapes compare."""
    if sample.empty:
        return sample
    median = float(np.interp((sample.n + 1) / 2, sample.ranks, sample.values))
    return replace(sample, values=sample.values / median) if median > 0 else sample

"""The whole pipeline on an embedded default: the offline demo model on the pydoc corpus.

It is what `nox -s demo` runs on a fresh machine, so it must need nothing but PyPI once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from zipfstage.config import Settings
from zipfstage.progress import counting_bar

DEMO_OVERRIDES = {"model": "demo", "data": "pydoc", "points": ["embed", "middle", "last"]}


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: Path
    seconds: dict[str, float]


def run_demo(
    out: Path | None = None,
    config: Path | None = None,
    max_tokens: int | None = None,
    bootstrap: int | None = None,
    console: Console | None = None,
) -> DemoResult:
    """collect -> fit -> plot -> report into `out`; each stage resumes or skips what is done."""
    from zipfstage.collect.runner import run_collect
    from zipfstage.fitting.pipeline import run_fits
    from zipfstage.plotting import plot_run
    from zipfstage.report import build_report

    console = console or Console(stderr=True)
    settings = Settings.load(
        config,
        out=out,
        collect={**DEMO_OVERRIDES, "max_tokens": max_tokens},
        fit={"bootstrap": bootstrap},
    )
    seconds: dict[str, float] = {}

    def stage(name: str, number: int) -> float:
        console.rule(f"[bold]{number}/4 {name}")
        return time.perf_counter()

    started = stage("collect", 1)
    collected = run_collect(settings.collect, settings.out)
    seconds["collect"] = time.perf_counter() - started
    console.print(f"{collected.n_tokens:,} tokens in {collected.store}")

    started = stage("fit", 2)
    with counting_bar("fit", unit="fits", console=console) as progress:
        summary = run_fits(settings.out, **settings.fit.model_dump(), progress=progress)
    seconds["fit"] = time.perf_counter() - started
    console.print(f"{summary.n_fits} fits ({summary.n_not_ok} not ok) -> {summary.fits_json}")

    started = stage("plot", 3)
    plotted = plot_run(settings.out, fmt=settings.plot.format, dpi=settings.plot.dpi)
    seconds["plot"] = time.perf_counter() - started
    console.print(f"{len(plotted.written)} figures under {plotted.directory}")

    started = stage("report", 4)
    report = build_report(settings.out, settings.report.top_tokens, settings.report.tail_metric)
    seconds["report"] = time.perf_counter() - started
    console.rule()
    timings = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    console.print(f"[green]done[/] ({timings}). Open {report.html}")
    return DemoResult(settings.out, report.html, seconds)

"""The whole pipeline on an embedded default: the offline demo model on the pydoc corpus.

It is what `nox -s demo` runs on a fresh machine, so it must need nothing but PyPI once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from zipfstage.config import CollectSettings, Settings
from zipfstage.progress import counting_bar
from zipfstage.stage import Progress, StageResult
from zipfstage.store.layout import RunFolder

DEMO_OVERRIDES = {"model": "demo", "data": "pydoc", "points": ["embed", "middle", "last"]}
#: enough replicates for Clauset's verdict, so a first report reads plausible / ruled out, not
#: "not tested"; about +15-25 s of fit on 2 cores (the whole demo stays under 2 minutes)
DEMO_BOOTSTRAP = 100
#: a small eval set for ablate, so the whole demo stays under 3 minutes with the model cached
DEMO_ABLATE = {"eval_tokens": 1024, "calibration_tokens": 2048, "scan_tokens": 1024}

#: a stage's entry: run(settings_section, run_dir, progress) -> StageResult
StageRun = Callable[[Any, Path, Progress | None], StageResult]


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
    """collect -> fit -> outliers -> ablate -> plot -> report into `out`; collect resumes and
    fit skips what is done."""
    console = console or Console(stderr=True)
    settings = Settings.load(
        config,
        out=out,
        collect={**DEMO_OVERRIDES, "max_tokens": max_tokens},
        fit={"bootstrap": DEMO_BOOTSTRAP if bootstrap is None else bootstrap},
        ablate=DEMO_ABLATE,
    )
    sections = {
        "collect": settings.collect,
        "fit": settings.fit,
        "outliers": settings.outliers,
        "ablate": settings.ablate,
        "plot": settings.plot,
        "report": settings.report,
    }
    seconds: dict[str, float] = {}
    for number, (name, run) in enumerate(stages().items(), start=1):
        console.rule(f"[bold]{number}/{len(sections)} {name}")
        if name == "collect":  # collect draws its own progress bars
            result = run(sections[name], settings.out, None)
        else:
            with counting_bar(name, unit="steps", console=console) as progress:
                result = run(sections[name], settings.out, progress)
        seconds[name] = result.seconds
        console.print(result.summary, highlight=False)
    console.rule()
    timings = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    report = RunFolder.at(settings.out).report_html
    console.print(f"[green]done[/] ({timings}). Open {report}")
    return DemoResult(settings.out, report, seconds)


def stages() -> dict[str, StageRun]:
    """The stages in order; imported here so torch, numba and matplotlib load on demand."""
    from zipfstage.ablate import stage as ablate
    from zipfstage.fitting import stage as fit
    from zipfstage.outliers import stage as outliers
    from zipfstage.plotting import stage as plot
    from zipfstage.report import stage as report

    return {
        "collect": collect_stage,
        "fit": fit.run,
        "outliers": outliers.run,
        "ablate": ablate.run,
        "plot": plot.run,
        "report": report.run,
    }


def collect_stage(
    settings: CollectSettings, run_dir: Path, progress: Progress | None = None
) -> StageResult:
    """`run_collect` in the stage shape (collect reports progress through its own bars)."""
    from zipfstage.collect.runner import run_collect

    started = time.perf_counter()
    outcome = run_collect(settings, run_dir)
    return StageResult(
        stage="collect",
        summary=f"{outcome.n_tokens:,} tokens in {outcome.store}",
        outputs=(outcome.store,),
        seconds=time.perf_counter() - started,
        counts={"tokens": outcome.n_tokens},
    )

"""`zipfstage demo --compare`: the demo model on two offline corpora and at two dtypes, compared.

Three runs of the cached demo model (pydoc in float32, the standard library's docstrings in
float32, pydoc in bfloat16), each collected and fitted into OUT/runs/<name>, then compared into
OUT/compare. Every stage resumes or skips what is already done.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from zipfstage.compare.stage import CompareResult, prepare_compare, write_compare
from zipfstage.config import Settings
from zipfstage.progress import counting_bar

DEMO_RUNS = {
    "pydoc-float32": {"data": "pydoc", "dtype": "float32"},
    "stdlib-docstrings-float32": {"data": "stdlib-docstrings", "dtype": "float32"},
    "pydoc-bfloat16": {"data": "pydoc", "dtype": "bfloat16"},
}
DEMO_COLLECT = {"model": "demo", "points": ["embed", "middle", "last"]}
#: bootstrap replicates when none are asked for: without p-values the verdict table is empty
DEMO_BOOTSTRAP = 50


def run_compare_demo(
    out: Path | None = None,
    config: Path | None = None,
    max_tokens: int | None = None,
    bootstrap: int | None = None,
    console: Console | None = None,
) -> CompareResult:
    """collect -> fit for each demo run, then compare them all into OUT/compare."""
    from zipfstage.collect.runner import run_collect
    from zipfstage.fitting import stage as fit_stage
    from zipfstage.outliers import stage as outlier_stage

    console = console or Console(stderr=True)
    run_dirs = []
    for number, (name, overrides) in enumerate(DEMO_RUNS.items(), start=1):
        settings = Settings.load(
            config,
            out=out,
            collect={**DEMO_COLLECT, **overrides, "max_tokens": max_tokens},
            fit={"bootstrap": DEMO_BOOTSTRAP if bootstrap is None else bootstrap},
        )
        run_dir = settings.out / "runs" / name
        console.rule(f"[bold]{number}/{len(DEMO_RUNS) + 1} {name}")
        started = time.perf_counter()
        collected = run_collect(settings.collect, run_dir)
        with counting_bar("fit", unit="fits", console=console) as progress:
            fit_stage.run(settings.fit, run_dir, progress)
        outlier_stage.run(settings.outliers, run_dir)
        seconds = time.perf_counter() - started
        console.print(f"{collected.n_tokens:,} tokens collected and fitted in {seconds:.1f} s")
        run_dirs.append(run_dir)
    console.rule(f"[bold]{len(DEMO_RUNS) + 1}/{len(DEMO_RUNS) + 1} compare")
    final = Settings.load(config, out=out)
    prepared = prepare_compare(
        run_dirs, final.out / "compare", final.plot.metrics, fmt=final.plot.format
    )
    with counting_bar("compare", unit="figures", console=console) as progress:
        result = write_compare(prepared, final.plot.dpi, progress=progress)
    console.print(f"[green]done[/] in {result.seconds:.1f} s. Open {result.html}")
    return result

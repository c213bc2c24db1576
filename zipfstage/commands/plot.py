"""`zipfstage plot`: draw every figure from the store and its fits (never loads the model)."""

from __future__ import annotations

from typing import Annotated

import typer

from zipfstage.commands.common import (
    ConfigOption,
    MetricsOption,
    OutOption,
    PointsOption,
    cli_errors,
    console,
    load_settings,
    split_csv,
)
from zipfstage.progress import counting_bar


@cli_errors
def plot_command(
    config: ConfigOption = None,
    out: OutOption = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="png, pdf, svg, or both (png + pdf).")
    ] = None,
    points: PointsOption = None,
    metrics: MetricsOption = None,
    dpi: Annotated[
        int | None, typer.Option("--dpi", help="Raster resolution (default: 150).")
    ] = None,
    figures: Annotated[
        str | None,
        typer.Option(
            "--figures",
            help="summary (default): dashboards, depth overlays, outlier figures, the CCDFs the "
            "report's summary names and a few per metric; all: also every (point, metric)'s "
            "CCDF, rank-frequency plot and xmin diagnostics.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Drawing processes; 0 = one per CPU.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redraw even the figures whose inputs did not change.")
    ] = False,
) -> None:
    """Draw dashboards, depth overlays, CCDFs (all: rank-frequency plots, xmin diagnostics)."""
    section = {
        "format": fmt, "dpi": dpi, "points": split_csv(points), "metrics": split_csv(metrics),
        "figures": figures, "workers": workers,
    }  # fmt: skip
    settings = load_settings(config, out=out, plot=section)
    with counting_bar("plot", unit="figures", console=console) as progress:
        from zipfstage.plotting.stage import run  # matplotlib loads only when plot runs

        result = run(settings.plot, settings.out, progress, force=force)
    for note in result.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    console.print(result.summary, highlight=False)

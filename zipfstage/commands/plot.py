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
) -> None:
    """Draw CCDFs, rank-frequency plots, depth overlays, dashboards and xmin diagnostics."""
    settings = load_settings(
        config,
        out=out,
        plot={
            "format": fmt,
            "dpi": dpi,
            "points": split_csv(points),
            "metrics": split_csv(metrics),
        },
    )
    from zipfstage.plotting.stage import run  # matplotlib loads only when plot runs

    result = run(settings.plot, settings.out)
    for note in result.notes:
        console.print(f"[yellow]{note}[/]", highlight=False)
    console.print(result.summary, highlight=False)

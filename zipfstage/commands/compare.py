"""`zipfstage compare`: fitted runs side by side, by relative depth (never loads a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zipfstage.commands.common import MetricsOption, cli_errors, console, split_csv
from zipfstage.progress import counting_bar


@cli_errors
def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (each with store.zarr).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where compare.* and plots/ go.")],
    metrics: MetricsOption = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated run names, one per run.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="png, pdf, svg, or both (png + pdf).")
    ] = "png",
    dpi: Annotated[int, typer.Option("--dpi", help="Raster resolution.", min=1)] = 150,
) -> None:
    """Compare runs: alpha and massive activations by relative depth, CCDFs, verdict shares."""
    from zipfstage.compare import prepare_compare, write_compare

    prepared = prepare_compare(runs, out, split_csv(metrics), split_csv(labels), fmt)
    with counting_bar("compare", unit="figures", console=console) as progress:
        result = write_compare(prepared, dpi, progress=progress)
    console.print(
        f"wrote {result.html}, {result.markdown}, {result.json} and {len(result.figures)} "
        f"figures in {result.seconds:.1f} s",
        highlight=False,
    )

"""`zipfstage export`: the fit table (one row per point x metric x channel) as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, console, load_settings


@cli_errors
def export_command(
    config: ConfigOption = None,
    out: OutOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv or parquet (parquet needs pyarrow).")
    ] = "csv",
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Output file (default: DIR/fits.csv or DIR/fits.parquet)."),
    ] = None,
) -> None:
    """Write every fit with its verdicts as one flat table for pandas, R or a spreadsheet."""
    from zipfstage.analysis.export import export_fits
    from zipfstage.store.lock import reading_lock

    settings = load_settings(config, out)
    with reading_lock(settings.out):
        path, rows = export_fits(settings.out, fmt, to)  # type: ignore[arg-type]
    console.print(f"wrote {rows:,} fits to {path}", highlight=False)

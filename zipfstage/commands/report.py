"""`zipfstage report`: write report.html (self-contained) and report.md from the store and fits."""

from __future__ import annotations

from typing import Annotated

import typer

from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, console, load_settings
from zipfstage.progress import counting_bar


@cli_errors
def report_command(
    config: ConfigOption = None,
    out: OutOption = None,
    top_tokens: Annotated[
        int | None,
        typer.Option(
            "--top-tokens",
            help="Tokens listed per point as the tail's source (default: 20).",
            min=0,
        ),
    ] = None,
    tail_metric: Annotated[
        str | None,
        typer.Option(
            "--tail-metric",
            help="Metric whose largest values pick those tokens (default: max_abs).",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Drawing processes; 0 = one per CPU.")
    ] = None,
    embed_mb: Annotated[
        float | None,
        typer.Option(
            "--embed-mb",
            help="report.html embeds every figure while they total at most this many MB "
            "(default: 20); above, it embeds the summary figures and links the rest from "
            "report_files/.",
            min=0,
        ),
    ] = None,
) -> None:
    """Write DIR/report.html and DIR/report.md: the run, every fit and verdict, the figures."""
    section = {
        "top_tokens": top_tokens, "tail_metric": tail_metric, "workers": workers,
        "embed_mb": embed_mb,
    }  # fmt: skip
    settings = load_settings(config, out=out, report=section)
    with counting_bar("report", unit="figures", console=console) as progress:
        from zipfstage.report.stage import run  # matplotlib loads only when report runs

        result = run(settings.report, settings.out, progress)
    console.print(result.summary, highlight=False)

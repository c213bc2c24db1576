"""`zipfstage fit`: fit a power law to every (point, metric) in the store, without the model."""

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

DiscreteOption = Annotated[
    str | None,
    typer.Option(
        "--discrete",
        help="Discrete power law on the integers: auto (default; when every value is an "
        "integer and the store is not a bf16/fp16 collection), yes, no.",
    ),
]


@cli_errors
def fit_command(
    config: ConfigOption = None,
    out: OutOption = None,
    max_samples: Annotated[
        int | None,
        typer.Option("--max-samples", help="Seeded random subsample per (point, metric); 0 = all."),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option("--bootstrap", help="Bootstrap replicates for the goodness-of-fit p-value."),
    ] = None,
    points: PointsOption = None,
    metrics: MetricsOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes; 0 = one per CPU.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Subsample and bootstrap seed.")
    ] = None,
    skip_positions: Annotated[
        int | None,
        typer.Option(
            "--skip-positions",
            help="Leave out tokens at sequence positions below this (default: 1); "
            "0 keeps the first token (the attention sink).",
        ),
    ] = None,
    ks: Annotated[
        str | None,
        typer.Option(
            "--ks",
            help="KS distance that chooses xmin: powerlaw (default; the empirical CDF just below "
            "each value) or sup (the two-sided supremum, stricter on tied bf16 data).",
        ),
    ] = None,
    discrete: DiscreteOption = None,
    force: Annotated[bool, typer.Option("--force", help="Refit even if nothing changed.")] = False,
) -> None:
    """Fit power laws (CSN method, comparisons, optional bootstrap) to the collected metrics."""
    section = {
        "max_samples": max_samples, "bootstrap": bootstrap, "points": split_csv(points),
        "metrics": split_csv(metrics), "workers": workers, "seed": seed,
        "skip_positions": skip_positions, "ks": ks, "discrete": discrete,
    }  # fmt: skip
    settings = load_settings(config, out, fit=section)
    with counting_bar("fit", unit="fits", console=console) as progress:
        from zipfstage.fitting.stage import run  # numba loads only when fit runs

        result = run(settings.fit, settings.out, progress, force=force)
    console.print(result.summary, highlight=False)
    with counting_bar("outliers", unit="points", console=console) as progress:
        from zipfstage.outliers.stage import run as analyse

        analysis = analyse(settings.outliers, settings.out, progress)
    console.print(analysis.summary, highlight=False)

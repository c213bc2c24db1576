"""`zipfstage collect`: run a model over text and store per-token activation metrics."""

from __future__ import annotations

from typing import Annotated

import typer

from zipfstage.collect.runner import run_collect
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
from zipfstage.errors import INTERRUPTED_EXIT_CODE

_MODEL = "Hub id (with --revision), local folder, .gguf file, or 'demo' (offline SmolLM2-135M)."
_DATA = "Dataset name on the Hub, a local .txt/.jsonl/.parquet file, folder or glob, or 'pydoc'."


@cli_errors
def collect_command(
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL)] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag, commit).")] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto|bfloat16|float16|float32 (auto: bf16 GPU, fp32 CPU).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:<i> (default: auto).")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help=_DATA)] = None,
    subset: Annotated[str | None, typer.Option(help="Dataset configuration name.")] = None,
    split: Annotated[str | None, typer.Option(help="Dataset split [train].")] = None,
    text_field: Annotated[str | None, typer.Option(help="Field holding the text [text].")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Stop after this many tokens.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per batch.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per packed sequence.")] = None,
    prepend_bos: Annotated[
        bool | None, typer.Option("--bos/--no-bos", help="Start each sequence with BOS.")
    ] = None,
    points: PointsOption = None,
    metrics: MetricsOption = None,
    channels: Annotated[int | None, typer.Option(help="Channels sampled for channel_wise.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the channel sample.")] = None,
    out: OutOption = None,
    config: ConfigOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a store collected with other settings.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Collect per-token activation metrics into OUT/store.zarr (re-run the same command to resume)."""
    settings = load_settings(
        config,
        out=out,
        collect={
            "model": model, "revision": revision, "dtype": dtype, "device": device, "data": data,
            "subset": subset, "split": split, "text_field": text_field, "max_tokens": max_tokens,
            "batch_size": batch_size, "seq_len": seq_len, "prepend_bos": prepend_bos,
            "points": split_csv(points), "metrics": split_csv(metrics), "channels": channels,
            "seed": seed,
        },
    )
    outcome = run_collect(settings.collect, settings.out, overwrite=overwrite, quiet=quiet)
    if outcome.status == "already_complete":
        console.print(f"{outcome.store} is already complete ({outcome.n_tokens:,} tokens); "
                      "nothing to do")
    elif outcome.status == "stopped":
        console.print(f"stopped at a batch boundary with {outcome.n_tokens:,} tokens committed; "
                      "run the same command again to resume")
        raise typer.Exit(INTERRUPTED_EXIT_CODE)
    else:
        console.print(f"[green]collected[/] {outcome.n_tokens:,} tokens into {outcome.store} "
                      f"({outcome.tokens_per_second:,.0f} tok/s this session)")

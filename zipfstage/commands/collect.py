"""`zipfstage collect`: run a model over text and store per-token activation metrics."""

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
from zipfstage.errors import INTERRUPTED_EXIT_CODE, ZipfstageError

_MODEL = "Hub id (with --revision), local folder, .gguf file, or 'demo' (offline SmolLM2-135M)."
_DATA = "Dataset name on the Hub, a local .txt/.jsonl/.parquet file, folder or glob, or 'pydoc'."


@cli_errors
def collect_command(
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL)] = None,
    revision: Annotated[
        str | None, typer.Option(help="Hub revision (branch, tag, commit).")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto|bfloat16|float16|float32 (auto: bf16 GPU, fp32 CPU).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:<i> (default: auto).")
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="Comma-separated devices, one worker each (cpu,cpu).")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPU indices, one worker each (0,1 = --devices cuda:0,cuda:1)."),
    ] = None,
    shard_model: Annotated[
        bool | None,
        typer.Option(
            "--shard-model/--no-shard-model",
            help="Spread one model over the listed devices instead of one per worker.",
        ),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help=_DATA)] = None,
    subset: Annotated[str | None, typer.Option(help="Dataset configuration name.")] = None,
    split: Annotated[str | None, typer.Option(help="Dataset split (default: train).")] = None,
    text_field: Annotated[
        str | None, typer.Option(help="Field holding the text (default: text).")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Stop after this many tokens (default: 20000).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per batch (default: 8).")
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(help="Tokens per packed sequence (default: 256).")
    ] = None,
    prepend_bos: Annotated[
        bool | None, typer.Option("--bos/--no-bos", help="Start each sequence with BOS.")
    ] = None,
    points: PointsOption = None,
    sites: Annotated[
        str | None,
        typer.Option(
            help="Sites at every selected layer: attn_out,resid_mid,mlp_act,mlp_out,resid_post "
            "or all (default: resid_post). --points also takes <layer>.<site>, e.g. middle.mlp_act."
        ),
    ] = None,
    metrics: MetricsOption = None,
    channels: Annotated[
        int | None, typer.Option(help="Channels sampled for channel_wise (default: 64).")
    ] = None,
    topk: Annotated[
        int | None,
        typer.Option(help="Top-k channels kept per token (topk_abs/_channel/_sign); 0 = off."),
    ] = None,
    hill_k: Annotated[
        int | None,
        typer.Option(help="Top |h| values hill_tail uses (default: max(10, width // 100))."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the channel sample.")] = None,
    compact: Annotated[
        bool | None,
        typer.Option(
            "--compact/--no-compact",
            help="Rewrite the finished store with sharding: O(arrays) files (default: on).",
        ),
    ] = None,
    out: OutOption = None,
    config: ConfigOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a store collected with other settings.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Collect per-token activation metrics into OUT/store.zarr (re-run the same command to resume).

    Several --devices (or --gpus) run one worker each on disjoint batches of the same store; under
    torchrun each rank takes its share. A resume works with any number of workers.
    """
    device_list = parse_devices(devices, gpus)
    settings = load_settings(
        config,
        out=out,
        collect={
            "model": model,
            "revision": revision,
            "dtype": dtype,
            "device": device,
            "devices": device_list,
            "shard_model": shard_model,
            "data": data,
            "subset": subset,
            "split": split,
            "text_field": text_field,
            "max_tokens": max_tokens,
            "batch_size": batch_size,
            "seq_len": seq_len,
            "prepend_bos": prepend_bos,
            "points": split_csv(points),
            "sites": split_csv(sites),
            "metrics": split_csv(metrics),
            "channels": channels,
            "topk": topk,
            "hill_k": hill_k,
            "seed": seed,
            "compact": compact,
        },
    )
    # torch loads only when collect runs
    from zipfstage.collect.models import hide_transformers_progress
    from zipfstage.collect.runner import run_collect

    hide_transformers_progress()  # the CLI's choice; the loading spinner says what is going on
    outcome = run_collect(settings.collect, settings.out, overwrite=overwrite, quiet=quiet)
    if not outcome.coordinator:  # a torchrun rank other than 0: rank 0 reports for the run
        if outcome.status == "stopped":
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        return
    if outcome.status == "already_complete":
        console.print(
            f"{outcome.store} is already complete ({outcome.n_tokens:,} tokens); nothing to do"
        )
    elif outcome.status == "stopped":
        console.print(
            f"stopped at a batch boundary with {outcome.n_tokens:,} tokens committed; "
            "run the same command again to resume"
        )
        raise typer.Exit(INTERRUPTED_EXIT_CODE)
    else:
        console.print(
            f"[green]collected[/] {outcome.n_tokens:,} tokens into {outcome.store} "
            f"({outcome.tokens_per_second:,.0f} tok/s this session)"
        )


def parse_devices(devices: str | None, gpus: str | None) -> list[str] | None:
    """--gpus 0,1 is shorthand for --devices cuda:0,cuda:1; giving both is ambiguous."""
    if devices is not None and gpus is not None:
        raise ZipfstageError("give --devices or --gpus, not both")
    if gpus is not None:
        indices = split_csv(gpus) or []
        bad = [i for i in indices if not i.isdigit()]
        if bad:
            raise ZipfstageError(f"--gpus takes GPU indices like 0,1; got {', '.join(bad)}")
        return [f"cuda:{i}" for i in indices]
    return split_csv(devices)

"""`zipfstage collect`: run a model over text and store per-token activation metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from zipfstage.collect.outcome import CollectOutcome

_MODEL = "Hub id (with --revision), local folder, .gguf file, or 'demo' (offline SmolLM2-135M)."
_DATA = "Dataset name on the Hub, a local .txt/.jsonl/.parquet file, folder or glob, or 'pydoc'."


# option types, one per setting: the command below only maps them onto settings
ModelOption = Annotated[str | None, typer.Option("--model", "-m", help=_MODEL)]
RevisionOption = Annotated[str | None, typer.Option(help="Hub revision (branch, tag, commit).")]
DtypeOption = Annotated[
    str | None, typer.Option(help="auto|bfloat16|float16|float32 (auto: bf16 GPU, fp32 CPU).")
]
DeviceOption = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:<i> (default: auto).")]
DevicesOption = Annotated[
    str | None, typer.Option(help="Comma-separated devices, one worker each (cpu,cpu).")
]
GpusOption = Annotated[
    str | None,
    typer.Option(help="GPU indices, one worker each (0,1 = --devices cuda:0,cuda:1)."),
]
ShardModelOption = Annotated[
    bool | None,
    typer.Option(
        "--shard-model/--no-shard-model",
        help="Spread one model over the listed devices instead of one per worker.",
    ),
]
DataOption = Annotated[str | None, typer.Option("--data", "-d", help=_DATA)]
SubsetOption = Annotated[str | None, typer.Option(help="Dataset configuration name.")]
SplitOption = Annotated[str | None, typer.Option(help="Dataset split (default: train).")]
TextFieldOption = Annotated[
    str | None, typer.Option(help="Field holding the text (default: text).")
]
MaxTokensOption = Annotated[
    int | None, typer.Option(help="Stop after this many tokens (default: 20000).")
]
BatchSizeOption = Annotated[int | None, typer.Option(help="Sequences per batch (default: 8).")]
SeqLenOption = Annotated[
    int | None, typer.Option(help="Tokens per packed sequence (default: 256).")
]
PrependBosOption = Annotated[
    bool | None, typer.Option("--bos/--no-bos", help="Start each sequence with BOS.")
]
SitesOption = Annotated[
    str | None,
    typer.Option(
        help="Sites at every selected layer: attn_out,resid_mid,mlp_act,mlp_out,resid_post "
        "or all (default: resid_post); attn adds per-head attention statistics (not in all). "
        "--points also takes <layer>.<site>, e.g. middle.mlp_act."
    ),
]
ChannelsOption = Annotated[
    int | None, typer.Option(help="Channels sampled for channel_wise (default: 64).")
]
TopkOption = Annotated[
    int | None,
    typer.Option(help="Top-k channels kept per token (topk_abs/_channel/_sign); 0 = off."),
]
HillKOption = Annotated[
    int | None,
    typer.Option(help="Top |h| values hill_tail uses (default: max(10, width // 100))."),
]
SeedOption = Annotated[int | None, typer.Option(help="Seed for the channel sample.")]
CompactOption = Annotated[
    bool | None,
    typer.Option(
        "--compact/--no-compact",
        help="Rewrite the finished store with sharding: O(arrays) files (default: on).",
    ),
]
SpaceCheckOption = Annotated[
    bool | None,
    typer.Option(
        "--space-check/--no-space-check",
        help="Refuse to start when --out's free space is below the store's estimated peak.",
    ),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace a store collected with other settings.")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no size estimate line.")
]


@cli_errors
def collect_command(
    model: ModelOption = None,
    revision: RevisionOption = None,
    dtype: DtypeOption = None,
    device: DeviceOption = None,
    devices: DevicesOption = None,
    gpus: GpusOption = None,
    shard_model: ShardModelOption = None,
    data: DataOption = None,
    subset: SubsetOption = None,
    split: SplitOption = None,
    text_field: TextFieldOption = None,
    max_tokens: MaxTokensOption = None,
    batch_size: BatchSizeOption = None,
    seq_len: SeqLenOption = None,
    prepend_bos: PrependBosOption = None,
    points: PointsOption = None,
    sites: SitesOption = None,
    metrics: MetricsOption = None,
    channels: ChannelsOption = None,
    topk: TopkOption = None,
    hill_k: HillKOption = None,
    seed: SeedOption = None,
    compact: CompactOption = None,
    space_check: SpaceCheckOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
    overwrite: OverwriteOption = False,
    quiet: QuietOption = False,
) -> None:
    """Collect per-token activation metrics into OUT/store.zarr (re-run the same command to resume).

    Several --devices (or --gpus) run one worker each on disjoint batches of the same store; under
    torchrun each rank takes its share. A resume works with any number of workers.
    """
    device_list = parse_devices(devices, gpus)
    section = {
        "model": model, "revision": revision, "dtype": dtype, "device": device,
        "devices": device_list, "shard_model": shard_model, "data": data, "subset": subset,
        "split": split, "text_field": text_field, "max_tokens": max_tokens,
        "batch_size": batch_size, "seq_len": seq_len, "prepend_bos": prepend_bos,
        "points": split_csv(points), "sites": split_csv(sites), "metrics": split_csv(metrics),
        "channels": channels, "topk": topk, "hill_k": hill_k, "seed": seed, "compact": compact,
        "space_check": space_check,
    }  # fmt: skip
    settings = load_settings(config, out=out, collect=section)
    # torch loads only when collect runs
    from zipfstage.collect.models import hide_transformers_progress
    from zipfstage.collect.runner import run_collect

    hide_transformers_progress()  # the CLI's choice; the loading spinner says what is going on
    outcome = run_collect(settings.collect, settings.out, overwrite=overwrite, quiet=quiet)
    _say_outcome(outcome)


def _say_outcome(outcome: CollectOutcome) -> None:
    """One line on what happened; a stopped run exits 130 so scripts can tell."""
    if not outcome.coordinator:  # a torchrun rank other than 0: rank 0 reports for the run
        if outcome.status == "stopped":
            raise typer.Exit(INTERRUPTED_EXIT_CODE)
        return
    if outcome.status == "already_complete":
        console.print(
            f"{outcome.store} is already complete ({outcome.tokens_line()}{outcome.ended_note}); "
            "nothing to do: every batch matches its checksums and digest"
        )
    elif outcome.status == "stopped":
        console.print(
            f"stopped at a batch boundary with {outcome.n_tokens:,} tokens committed; "
            "run the same command again to resume"
        )
        raise typer.Exit(INTERRUPTED_EXIT_CODE)
    else:
        console.print(
            f"[green]collected[/] {outcome.tokens_line()} into {outcome.store}"
            f"{outcome.ended_note} ({outcome.tokens_per_second:,.0f} tok/s this session)"
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

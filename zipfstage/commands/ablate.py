"""`zipfstage ablate`: interventions on the outlier channels, with the run's own model."""

from __future__ import annotations

from typing import Annotated

import typer

from zipfstage.commands.collect import (
    DataOption,
    DeviceOption,
    DevicesOption,
    GpusOption,
    ShardModelOption,
    SplitOption,
    SubsetOption,
    TextFieldOption,
    parse_devices,
)
from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, console, load_settings
from zipfstage.progress import counting_bar

_MODEL = "Where the run's model lives, if not where collect loaded it (same model, checked)."
_TARGET = (
    "auto (everything outliers.json names), massive, dettmers, super_weight, or explicit "
    "channels of a block output: layer_11:507,247."
)


@cli_errors
def ablate_command(
    out: OutOption = None,
    config: ConfigOption = None,
    target: Annotated[str | None, typer.Option(help=_TARGET)] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="zero, mean (over the tokens edited), typical (over the others) or clamp "
            "(default: massive under zero, mean and typical; the rest zeroed)."
        ),
    ] = None,
    tokens: Annotated[
        str | None,
        typer.Option(help="first, carriers or all (default: carriers for massive, else all)."),
    ] = None,
    eval_tokens: Annotated[
        int | None, typer.Option(help="Tokens of text collect did not use (default: 20000).")
    ] = None,
    controls: Annotated[
        int | None, typer.Option(help="Random-channel controls per intervention (default: 5).")
    ] = None,
    clamp_quantile: Annotated[
        float | None, typer.Option(help="clamp: |h| quantile to clamp to (default: 0.99).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per forward pass (default: collect's).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL)] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (must be the run's).")] = None,
    device: DeviceOption = None,
    devices: DevicesOption = None,
    gpus: GpusOption = None,
    shard_model: ShardModelOption = None,
    data: DataOption = None,
    subset: SubsetOption = None,
    split: SplitOption = None,
    text_field: TextFieldOption = None,
    format: Annotated[str | None, typer.Option(help="png, pdf, svg or both.")] = None,
) -> None:
    """Does the tail matter? Zero, mean- or typical-set the outlier channels; perplexity vs. the
    baseline and random controls, on text collect did not use. Writes OUT/ablate.json."""
    section = {
        "target": target, "mode": mode, "tokens": tokens, "eval_tokens": eval_tokens,
        "controls": controls, "clamp_quantile": clamp_quantile, "batch_size": batch_size,
        "model": model, "revision": revision, "device": device,
        "devices": parse_devices(devices, gpus), "shard_model": shard_model, "data": data,
        "subset": subset, "split": split, "text_field": text_field, "format": format,
    }  # fmt: skip
    settings = load_settings(config, out, ablate=section)
    from zipfstage.collect.models import hide_transformers_progress

    hide_transformers_progress()
    with counting_bar("ablate", unit="tok", console=console) as progress:
        from zipfstage.ablate.stage import run  # torch loads only when ablate runs

        result = run(settings.ablate, settings.out, progress)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    console.print(result.summary, highlight=False, soft_wrap=True)

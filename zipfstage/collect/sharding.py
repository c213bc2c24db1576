"""`--shard-model`: one replica spread over several GPUs, for models too large for one.

The map is computed on an empty (meta) copy of the model with accelerate, balanced over exactly the
listed GPUs, so nothing is loaded twice and no other GPU is touched. Hooks and the reducer already
work with blocks on different devices.
"""

from __future__ import annotations

from typing import Any

import torch

from zipfstage.collect.models import pick_device, pick_dtype, resolve_source
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError

DeviceMap = dict[str, Any]


def shard_device_map(settings: CollectSettings, devices: list[str]) -> DeviceMap:
    """The device_map that places one replica over `devices` (all GPUs visible when empty)."""
    if not devices:
        if settings.device:
            devices = [settings.device]
        elif torch.cuda.is_available():
            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        else:
            devices = ["cpu"]
    resolved = [pick_device(d) for d in devices]
    kinds = {d.type for d in resolved}
    if kinds == {"cpu"}:
        return {"": "cpu"}
    if kinds != {"cuda"}:
        raise ZipfstageError(
            f"--shard-model spreads one model over GPUs; got {', '.join(devices)} "
            "(use only cuda:<i>)"
        )
    indices = sorted({d.index if d.index is not None else 0 for d in resolved})
    for index in indices:
        if index >= torch.cuda.device_count():
            raise ZipfstageError(
                f"cuda:{index} asked for, but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    memory = {index: torch.cuda.mem_get_info(index)[0] for index in indices}
    dtype = pick_dtype(settings.dtype, resolved[0])
    return balanced_map(empty_model(settings), memory, dtype)


def empty_model(settings: CollectSettings) -> Any:
    """The model's modules on the meta device: shapes without weights, instant for any size."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    source, extra = resolve_source(settings.model)
    try:
        config = AutoConfig.from_pretrained(source, revision=settings.revision, **extra)
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZipfstageError(f"cannot load model {settings.model!r}: {first_line}") from None
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config)


def balanced_map(model: Any, memory: dict[int, int], dtype: torch.dtype) -> DeviceMap:
    """Split the blocks evenly over the GPUs in `memory` (index -> free bytes), never onto CPU."""
    from accelerate.utils import get_balanced_memory, infer_auto_device_map

    no_split = sorted(getattr(model, "_no_split_modules", None) or [])
    budget: dict[int | str, int | str] = {index: free for index, free in memory.items()}
    balanced = get_balanced_memory(
        model, max_memory=budget, no_split_module_classes=no_split, dtype=dtype
    )
    device_map: DeviceMap = infer_auto_device_map(
        model, max_memory=balanced, no_split_module_classes=no_split, dtype=dtype
    )
    off_gpu = sorted({str(v) for v in device_map.values() if not isinstance(v, int)})
    if off_gpu:
        raise ZipfstageError(
            f"the model does not fit on the listed GPUs (parts would go to {', '.join(off_gpu)}); "
            "list more GPUs or use a smaller --dtype"
        )
    return device_map

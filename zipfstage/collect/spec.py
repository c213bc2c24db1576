"""What a run writes, without the model: the store spec, its identity, and the "same store" check.

Workers and ranks each describe the store they would write; the coordinator, which may hold no
model at all, checks that they agree and creates or checks the store from the spec alone.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import zarr

from zipfstage import __version__
from zipfstage.errors import ZipfstageError
from zipfstage.store import StorePlan, TopkLayout


@dataclass(frozen=True)
class StoreSpec:
    """A picklable description of the store a run writes (workers send it to the coordinator)."""

    config_hash: str
    identity: dict[str, Any]
    plan: StorePlan
    points: list[str]
    metrics: list[str]
    channel_indices: list[int]
    attributes: dict[str, Any]
    #: points with top-k arrays and their layout (empty with --topk 0)
    topk: dict[str, TopkLayout] = field(default_factory=dict)
    #: channel_wise indices of each point where they differ from `channel_indices` (d_ff sites)
    point_channels: dict[str, list[int]] = field(default_factory=dict)
    #: channel_wise's and topk_abs's stored dtype: 16 bits for a bf16 or fp16 model
    value_dtype: str = "float32"
    #: attn points and their number of heads ([N, heads] arrays of ATTN_METRICS)
    attention: dict[str, int] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    """The versions the store records, so a result can be traced to the code that made it."""
    import transformers

    return {
        "zipfstage": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'seq_len 128 -> 256, model.name a -> b': only the keys that differ."""
    return ", ".join(_changes(old, new, "")) or "unknown difference"


def _changes(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    parts: list[str] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            parts.extend(_changes(before, after, f"{prefix}{key}."))
        elif before != after:
            parts.append(f"{prefix}{key} {before!r} -> {after!r}")
    return parts


def check_same_store(specs: Sequence[StoreSpec], name: Callable[[int], str]) -> StoreSpec:
    """The one spec every process agrees on; `name(i)` says who process i is in the error."""
    first = specs[0]
    for index, spec in enumerate(specs):
        if spec.config_hash != first.config_hash:
            changed = describe_changes(first.identity, spec.identity)
            raise ZipfstageError(
                f"{name(index)} would write a different store than {name(0)} ({changed}); "
                "use one kind of device or set --dtype"
            )
    return first

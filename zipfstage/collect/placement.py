"""Device placement, decided in one place: which strategy runs, and where each process's model goes.

A run is one of three shapes: one process (one device, or one replica spread over several GPUs
with --shard-model), one worker process per --devices entry, or one torchrun rank per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import torch

from zipfstage.collect.models import pick_device
from zipfstage.collect.sharding import shard_device_map
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError


class Strategy(Enum):
    SINGLE = "single"  # everything in this process
    WORKERS = "workers"  # one spawned worker per --devices entry
    TORCHRUN = "torchrun"  # this process is one rank of several


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int


class Placement(NamedTuple):
    """Where one process loads its model: a device (None: auto) and an optional shard map."""

    device: str | None
    device_map: Any = None


def torchrun_ranks() -> Ranks | None:
    """This process's place in a torchrun launch, from the environment torchrun sets."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ZipfstageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    return Ranks(rank, world, local)


def choose_strategy(settings: CollectSettings, ranks: Ranks | None) -> Strategy:
    """torchrun with several ranks, else one worker per device, else this process alone."""
    if ranks is not None and ranks.world_size > 1:
        return Strategy.TORCHRUN
    if len(settings.devices or []) > 1 and not settings.shard_model:
        return Strategy.WORKERS
    return Strategy.SINGLE


def place(settings: CollectSettings, slot: int = 0, torchrun: bool = False) -> Placement:
    """The placement of process `slot` (worker index or local rank; 0 for a single process).

    --shard-model spreads one replica over the devices; otherwise process i takes devices[i]
    (wrapping around), else --device, else auto. Under torchrun a bare `cuda` (or no device on
    a GPU machine) is `cuda:{LOCAL_RANK % visible GPUs}`: one GPU per rank on an 8-GPU node,
    and cuda:0 for every rank of a launcher that shows each rank only its own GPU.
    """
    devices = settings.devices or []
    if settings.shard_model:
        return Placement(
            devices[0] if devices else settings.device, shard_device_map(settings, devices)
        )
    if devices:
        return Placement(devices[slot % len(devices)])
    if torchrun and settings.device in (None, "cuda"):
        if torch.cuda.is_available():
            return Placement(f"cuda:{slot % torch.cuda.device_count()}")
        return Placement(settings.device or "cpu")
    return Placement(settings.device)


def rank_placement(settings: CollectSettings, ranks: Ranks) -> Placement:
    """(device, device_map) for a torchrun rank: by local rank."""
    return place(settings, ranks.local_rank, torchrun=True)


def use_device(placement: Placement) -> None:
    """Check the placement's device, and make its GPU this process's current one, before the
    model loads: otherwise every CUDA call that names no device (a library's allocation, the
    caching allocator's context) lands on cuda:0 too, in every worker and rank."""
    if placement.device is None:
        return
    target = pick_device(placement.device)  # one line (exit 2) for a device that is not there
    if target.type == "cuda" and target.index is not None:
        torch.cuda.set_device(target)


def check_devices(settings: CollectSettings) -> list[str]:
    """Every --devices entry, each checked to exist, before any worker starts."""
    devices = list(settings.devices or [])
    for device in devices:
        pick_device(device)
    return devices

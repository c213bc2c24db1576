"""Before the first batch: say how much disk the run will take, and refuse when it will not fit.

A store of 181 points and 2M tokens takes about 90-140 GB; finding out when the disk fills
hours into a run loses the time, so collect estimates the store's size from its plan
(`store.space`) and compares the peak (compaction included) with the free space of `--out`'s
file system. `--no-space-check` skips the refusal (the estimate is still printed), for file
systems whose free space says little (quotas elsewhere, network file systems, thin volumes).
"""

from __future__ import annotations

import sys
from pathlib import Path

from zipfstage.collect.spec import StoreSpec
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.store.space import (
    SpaceEstimate,
    block_size,
    estimate_space,
    free_bytes,
    planned_arrays,
)


def spec_estimate(spec: StoreSpec, tokens: int, block: int) -> SpaceEstimate:
    """The estimate for the store `spec` describes, once `tokens` rows are written."""
    channels = {p: spec.point_channels.get(p, spec.channel_indices) for p in spec.points}
    arrays = planned_arrays(
        spec.plan, spec.points, spec.metrics, channels, spec.topk, spec.value_dtype, spec.attention
    )
    return estimate_space(list(arrays), spec.plan, tokens, block)


def check_space(
    spec: StoreSpec,
    settings: CollectSettings,
    out_dir: Path,
    done_tokens: int = 0,
    reclaimed: int = 0,
    quiet: bool = False,
) -> None:
    """Print the estimate (unless `quiet`); refuse (one line) when the peak exceeds the free
    space.

    `done_tokens` are already in the store (a resume needs only the rest); `reclaimed` is what
    a store about to be replaced (--overwrite) frees.
    """
    block = block_size(out_dir)
    planned = (settings.max_tokens // settings.seq_len) * settings.seq_len
    whole = spec_estimate(spec, planned, block)
    already = spec_estimate(spec, done_tokens, block).store_bytes if done_tokens else 0
    needed = whole.peak_bytes(settings.compact) - already
    free = free_bytes(out_dir) + reclaimed
    more = " more" if done_tokens else ""
    compacting = (
        f", {fmt_bytes(needed)}{more} at its peak while compacting" if settings.compact else ""
    )
    if not quiet:
        print_note(
            f"the store will take about {fmt_bytes(whole.store_bytes - already)}{more} "
            f"({whole.point_token_bytes:,.0f} bytes per token per point, {whole.points} points, "
            f"{planned - done_tokens:,} tokens{compacting}); {fmt_bytes(free)} free"
        )
    if settings.space_check and needed > free:
        raise ZipfstageError(
            f"--out {out_dir} has {fmt_bytes(free)} free but the store needs about "
            f"{fmt_bytes(needed)}{more}: free some space, lower --max-tokens or --points, "
            "or pass --no-space-check"
        )


def print_note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def fmt_bytes(size: float) -> str:
    """Decimal units, three significant digits: 139 GB, 9.81 MB, 512 B."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"

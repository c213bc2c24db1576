"""`run_collect`, the one entry point: pick the strategy for this launch and run it.

Every strategy (one process, one worker per device, torchrun ranks) runs the same coordinator and
worker loop, so they lay out the same store and resume the same way.
"""

from __future__ import annotations

from pathlib import Path

from zipfstage.collect.distributed import run_distributed
from zipfstage.collect.outcome import CollectOutcome
from zipfstage.collect.parallel import run_parallel
from zipfstage.collect.placement import Strategy, choose_strategy, place, torchrun_ranks
from zipfstage.collect.single import run_single
from zipfstage.config import CollectSettings

__all__ = ["CollectOutcome", "run", "run_collect"]


def run_collect(
    settings: CollectSettings, out_dir: Path, overwrite: bool = False, quiet: bool = False
) -> CollectOutcome:
    """Collect metrics into `out_dir/store.zarr`, resuming a compatible interrupted run.

    Under torchrun every rank runs this; with several --devices a parent spawns one worker each;
    otherwise (one device, or --shard-model) it all happens in this process.
    """
    out_dir = Path(out_dir)
    ranks = torchrun_ranks()
    strategy = choose_strategy(settings, ranks)
    if strategy is Strategy.TORCHRUN:
        assert ranks is not None
        return run_distributed(settings, out_dir, overwrite, quiet, ranks)
    if strategy is Strategy.WORKERS:
        return run_parallel(settings, out_dir, overwrite, quiet)
    slot = ranks.local_rank if ranks is not None else 0
    placement = place(settings, slot, torchrun=ranks is not None)
    return run_single(settings, out_dir, overwrite, quiet, placement)


def run(
    settings: CollectSettings, run_dir: Path, quiet: bool = False, overwrite: bool = False
) -> CollectOutcome:
    """The collect stage in the shape every stage shares: settings and run directory in."""
    return run_collect(settings, run_dir, overwrite=overwrite, quiet=quiet)

"""Collect across machines under torchrun: every rank runs `zipfstage collect`, one store is shared.

Only control data travels between ranks (a gloo group, on CPU and GPU machines alike): the store
specs, rank 0's order, and the final batch counts. Rank 0 runs the coordinator (lock, store,
tokenizer, progress, finish); its `Work` broadcasts the pending batches and each rank takes
pending[rank::world], writing straight into the store on the shared filesystem. Every rank learns
of an error on any rank before the next collective, so none waits forever; a rank that dies is
torchrun's to tear down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch.distributed as dist

from zipfstage.collect.coordinator import agreed_batch_count, coordinate, share_of, stop_requests
from zipfstage.collect.messages import AlreadyDone, Failed, Go, Order, Ready
from zipfstage.collect.outcome import COMPLETE, STOPPED, CollectOutcome
from zipfstage.collect.placement import Ranks, rank_placement, use_device
from zipfstage.collect.plan import PreparedRun, prepare_run
from zipfstage.collect.spec import StoreSpec, check_same_store
from zipfstage.collect.worker import collect_batches
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance
from zipfstage.store import StoreWriter, store_path

#: ranks finish their shares at different times and then wait for each other; a dead rank is
#: torchrun's to handle, so the collectives may wait long (a day of imbalance is plenty)
TIMEOUT = timedelta(hours=24)
TOKENS_KEY = "zipfstage/collect/tokens"


class RankFailed(ZipfstageError):
    """Another rank could not prepare or run; exit 1 (2 is for the user's own input)."""

    exit_code = 1


def run_distributed(
    settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool, ranks: Ranks
) -> CollectOutcome:
    """This rank's part of a torchrun collect; rank 0's outcome describes the whole run."""
    dist.init_process_group("gloo", timeout=TIMEOUT)
    try:
        run, specs = _prepare_everywhere(settings, out_dir, ranks)
        if ranks.rank == 0:
            return _coordinate(run, specs, out_dir, overwrite, quiet, ranks)
        return _follow(run, out_dir, ranks)
    finally:
        dist.destroy_process_group()


def _gather(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def _broadcast(value: Any) -> Any:
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _raise_first_failure(statuses: list[Any], rank: int) -> None:
    """Every rank raises the same failure: its own in its own words, another rank's as such."""
    for source, status in enumerate(statuses):
        if not isinstance(status, Failed):
            continue
        if source == rank or not status.is_user_error:
            raise ZipfstageError(status.text) if status.is_user_error else RankFailed(status.text)
        raise RankFailed(f"rank {source} stopped the run: {status.text}")


def _prepare_everywhere(
    settings: CollectSettings, out_dir: Path, ranks: Ranks
) -> tuple[PreparedRun, list[StoreSpec]]:
    """Load the model on every rank; all ranks stop if any one cannot. Returns every rank's spec."""
    prepared: PreparedRun | Failed
    try:
        placement = rank_placement(settings, ranks)
        use_device(placement)
        prepared = prepare_run(settings, out_dir, placement)
    except Exception as exc:
        prefix = f"rank {ranks.rank}: "
        prepared = Failed.from_exception(ranks.rank, exc, RankFailed.exit_code, prefix)
    status = prepared if isinstance(prepared, Failed) else Ready(ranks.rank, prepared.spec())
    statuses = _gather(status)
    _raise_first_failure(statuses, ranks.rank)
    assert isinstance(prepared, PreparedRun)
    return prepared, [s.spec for s in statuses]


@dataclass
class RankZero:
    """Rank 0's `Work`: order every rank to its share, do its own, gather the batch counts."""

    prepared: PreparedRun
    ranks: Ranks
    stop_requested: Callable[[], bool]
    ordered: bool = False

    @property
    def label(self) -> str:
        return f"collect ({self.ranks.world_size} ranks)"

    def save_tokenizer(self, out_dir: Path) -> None:
        self.prepared.save_tokenizer(out_dir)

    def run(self, writer: StoreWriter, pending: list[int], advance: Advance) -> int | None:
        baseline = _token_counter(0)
        self.order(Go(pending))
        shared = _shared_advance(advance, baseline)
        return _write_share(self.prepared, writer, pending, self.ranks, shared, self.stop_requested)

    def order(self, order: Order) -> None:
        self.ordered = True
        _broadcast(order)


def _coordinate(
    run: PreparedRun,
    specs: list[StoreSpec],
    out_dir: Path,
    overwrite: bool,
    quiet: bool,
    ranks: Ranks,
) -> CollectOutcome:
    """Rank 0: the coordinator; the other ranks hear of an early end or failure before any work."""
    with stop_requests() as stop_requested:
        work = RankZero(run, ranks, stop_requested)
        try:
            spec = check_same_store(specs, lambda index: f"rank {index}")
            outcome = coordinate(spec, run.settings, out_dir, overwrite, quiet, work)
        except Exception as exc:
            if not work.ordered:
                work.order(Failed.from_exception(0, exc, RankFailed.exit_code, "rank 0: "))
            raise
    if not work.ordered:  # the store was complete already
        work.order(AlreadyDone(outcome))
    return outcome


def _follow(run: PreparedRun, out_dir: Path, ranks: Ranks) -> CollectOutcome:
    """A rank other than 0: do the share rank 0 orders; rank 0 reports for the whole run."""
    order: Order = _broadcast(None)
    _raise_first_failure([order], -1)
    if isinstance(order, AlreadyDone):
        return replace(order.outcome, coordinator=False)
    assert isinstance(order, Go)
    writer = StoreWriter(store_path(out_dir))
    with stop_requests() as stop_requested:
        advance = _shared_advance(None, 0)
        n_batches = _write_share(run, writer, order.batches, ranks, advance, stop_requested)
    status = STOPPED if n_batches is None else COMPLETE
    return CollectOutcome(store_path(out_dir), status, 0, 0, 0.0, coordinator=False)


def _write_share(
    run: PreparedRun,
    writer: StoreWriter,
    pending: list[int],
    ranks: Ranks,
    advance: Advance,
    stop_requested: Callable[[], bool],
) -> int | None:
    """This rank's round-robin share, then the batch count every rank agrees on."""
    share = set(share_of(pending, ranks.rank, ranks.world_size))
    n_batches = collect_batches(run, writer, advance, stop_requested, share.__contains__)
    results = _gather(n_batches)
    advance(0)  # the other ranks' last tokens
    return agreed_batch_count(results, "ranks")


def _token_counter(amount: int) -> int:
    """Add to the run-wide token count in torchrun's key-value store; returns the new total."""
    try:
        store = dist.distributed_c10d._get_default_store()
        return int(store.add(TOKENS_KEY, amount))
    except Exception:  # no shared store: each rank counts only its own tokens
        return -1


def _shared_advance(bar: Advance | None, baseline: int) -> Advance:
    """Every rank adds its tokens to one counter; rank 0's bar shows the total (all ranks)."""
    shown = 0
    local = 0

    def advance(amount: float = 1) -> None:
        nonlocal shown, local
        local += int(amount)
        total = _token_counter(int(amount))
        if bar is None:
            return
        current = total - baseline if total >= 0 and baseline >= 0 else local
        if current > shown:
            bar(current - shown)
            shown = current

    return advance

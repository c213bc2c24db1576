"""Collect across machines under torchrun: every rank runs `zipfstage collect`, one store is shared.

Only control data travels between ranks (a gloo group, on CPU and GPU machines alike): the store
specs, rank 0's decision, and the final batch counts. Rank 0 alone holds the lock, creates or checks
the store, saves the tokenizer and finalizes; each rank takes pending[rank::world] and writes its
batches straight into the store on the shared filesystem. Every rank learns of an error on any rank
before the next collective, so none waits forever; a rank that dies is torchrun's to tear down.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from zipfstage.collect.runner import (
    CollectOutcome,
    PreparedRun,
    Session,
    collect_batches,
    describe_changes,
    open_session,
    pending_batches,
    prepare_run,
    save_tokenizer,
    share_of,
    stop_requests,
)
from zipfstage.collect.sharding import shard_device_map
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance, progress_bar
from zipfstage.store import StoreWriter, store_path
from zipfstage.store.lock import exclusive_lock

#: ranks finish their shares at different times and then wait for each other; a dead rank is
#: torchrun's to handle, so the collectives may wait long (a day of imbalance is plenty)
TIMEOUT = timedelta(hours=24)
TOKENS_KEY = "zipfstage/collect/tokens"


class RankFailed(ZipfstageError):
    """Another rank could not prepare or run; exit 1 (2 is for the user's own input)."""

    exit_code = 1


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int


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


def rank_placement(settings: CollectSettings, ranks: Ranks) -> tuple[str | None, Any]:
    """(device, device_map) for this rank: --devices by local rank, else cuda:LOCAL_RANK or CPU."""
    devices = settings.devices or []
    if settings.shard_model:
        return (devices[0] if devices else None), shard_device_map(settings, devices)
    if devices:
        return devices[ranks.local_rank % len(devices)], None
    if settings.device:
        return settings.device, None
    return (f"cuda:{ranks.local_rank}" if torch.cuda.is_available() else "cpu"), None


def run_distributed(
    settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool, ranks: Ranks
) -> CollectOutcome:
    """This rank's part of a torchrun collect; rank 0's outcome describes the whole run."""
    dist.init_process_group("gloo", timeout=TIMEOUT)
    try:
        return _collect(settings, out_dir, overwrite, quiet, ranks)
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


def _raise_first_error(statuses: list[tuple[Any, ...]], rank: int) -> None:
    for source, status in enumerate(statuses):
        if status[0] == "error":
            _, text, code = status
            if source == rank or code != ZipfstageError.exit_code:
                own = code == ZipfstageError.exit_code
                raise ZipfstageError(text) if own else RankFailed(text)
            raise RankFailed(f"rank {source} stopped the run: {text}")


def _prepare(settings: CollectSettings, out_dir: Path, ranks: Ranks) -> tuple[Any, ...]:
    try:
        device, device_map = rank_placement(settings, ranks)
        return ("ready", prepare_run(settings, out_dir, device=device, device_map=device_map))
    except ZipfstageError as exc:
        return ("error", str(exc), exc.exit_code)
    except Exception as exc:
        return ("error", f"rank {ranks.rank}: {type(exc).__name__}: {exc}", RankFailed.exit_code)


def _collect(
    settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool, ranks: Ranks
) -> CollectOutcome:
    prepared = _prepare(settings, out_dir, ranks)
    run: PreparedRun | None = prepared[1] if prepared[0] == "ready" else None
    statuses = _gather(("ready", run.spec()) if run else prepared)
    _raise_first_error(statuses, ranks.rank)
    assert run is not None
    coordinator = ranks.rank == 0
    with ExitStack() as held:
        decision: tuple[Any, ...] = ("go", [])
        session: Session | None = None
        baseline = 0
        if coordinator:
            try:
                opened = _open(settings, out_dir, overwrite, statuses, held)
                if isinstance(opened, CollectOutcome):
                    decision = ("done", opened)
                else:
                    session = opened
                    save_tokenizer(run, out_dir)
                    decision = ("go", pending_batches(StoreWriter(session.path)))
            except ZipfstageError as exc:
                decision = ("error", str(exc), exc.exit_code)
            baseline = _token_counter(0)
        decision = _broadcast(decision)
        _raise_first_error([decision], 0 if coordinator else -1)
        if decision[0] == "done":
            outcome: CollectOutcome = decision[1]
            return replace(outcome, coordinator=coordinator)
        share = set(share_of(decision[1], ranks.rank, ranks.world_size))
        writer = StoreWriter(store_path(out_dir))
        with stop_requests() as stop_requested, ExitStack() as shown:
            bar: Advance | None = None
            if session is not None:
                bar = shown.enter_context(
                    progress_bar(
                        f"collect ({ranks.world_size} ranks)",
                        session.total_tokens,
                        "tok",
                        session.done_tokens,
                        quiet=quiet,
                    )
                )
            advance = _shared_advance(bar, baseline)
            n_batches = collect_batches(
                run, writer, advance, stop_requested, assigned=share.__contains__
            )
            results = _gather(n_batches)
            advance(0)  # the other ranks' last tokens
        stopped = any(n is None for n in results)
        counts = {n for n in results if n is not None}
        if not stopped and len(counts) != 1:
            raise RankFailed(f"ranks disagree on the number of batches ({sorted(counts)})")
        if session is None:
            status = "stopped" if stopped else "complete"
            return CollectOutcome(store_path(out_dir), status, 0, 0, 0.0, coordinator=False)
        new_tokens = int(writer.committed().sum()) - session.done_tokens
        return session.finish(None if stopped else counts.pop(), new_tokens)


def _open(
    settings: CollectSettings, out_dir: Path, overwrite: bool, statuses: list[Any], held: ExitStack
) -> Session | CollectOutcome:
    """Rank 0: check every rank would write the same store, take the lock, open the store."""
    first = statuses[0][1]
    for source, (_, spec) in enumerate(statuses):
        if spec.config_hash != first.config_hash:
            changed = describe_changes(first.identity, spec.identity)
            raise ZipfstageError(
                f"rank {source} would write a different store than rank 0 ({changed}); "
                "use one kind of device or set --dtype"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    held.enter_context(exclusive_lock(out_dir))
    return open_session(first, settings, out_dir, overwrite)


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

"""The one coordinator: lock, open (or check) the store, save the tokenizer, run, finish.

Every strategy is a thin `Work` over `coordinate`: one process does the batches itself, the worker
pool deals them to processes, torchrun rank 0 broadcasts them to the ranks. So every strategy lays
out the same store and resumes the same way: a re-run continues with the uncommitted batches,
whatever the number of workers before.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr

from zipfstage.collect.disk_space import check_space
from zipfstage.collect.outcome import ALREADY_COMPLETE, COMPLETE, STOPPED, CollectOutcome
from zipfstage.collect.spec import StoreSpec, describe_changes
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance, counting_bar, progress_bar
from zipfstage.records import CHANNEL_WISE
from zipfstage.store import StoreWriter, create_store, store_path
from zipfstage.store.compact import LAYOUT_ATTR, LAYOUT_SHARDED, compact_store, is_compacted
from zipfstage.store.integrity import check_store, repair_advice, unreadable_files
from zipfstage.store.layout import (
    ROOT_ATTR,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    StorePlan,
    remove_derived_outputs,
)
from zipfstage.store.lock import StoreInUse, exclusive_lock, replacing_lock
from zipfstage.store.space import allocated_bytes
from zipfstage.store.writer import finalize_store, update_attributes, write_error


class Work(Protocol):
    """What a strategy does once the store is open: its part of the coordinator sequence."""

    @property
    def label(self) -> str:
        """The progress bar's title."""
        ...

    def save_tokenizer(self, out_dir: Path) -> None: ...

    def run(self, writer: StoreWriter, pending: list[int], advance: Advance) -> int | None:
        """Write the pending batches; the data's batch count, or None when stopped."""
        ...


def coordinate(
    spec: StoreSpec,
    settings: CollectSettings,
    out_dir: Path,
    overwrite: bool,
    quiet: bool,
    work: Work,
) -> CollectOutcome:
    """The whole coordinator sequence around `work`; the outcome describes the whole run."""
    make_run_dir(out_dir)
    with exclusive_lock(out_dir):
        note_clamped_channels(spec, settings)
        session = open_session(spec, settings, out_dir, overwrite, quiet)
        if isinstance(session, CollectOutcome):
            compact_if_asked(settings, session.store, quiet)  # ends a compaction a kill cut short
            return session
        try:
            work.save_tokenizer(out_dir)
        except OSError as exc:
            raise write_error(f"cannot save the tokenizer in {out_dir}", exc) from None
        writer = StoreWriter(session.path)
        pending = pending_batches(writer)
        with progress_bar(
            work.label, session.total_tokens, "tok", session.done_tokens, quiet=quiet
        ) as advance:
            n_batches = work.run(writer, pending, advance)
        new_tokens = int(writer.committed().sum()) - session.done_tokens
        outcome = session.finish(n_batches, new_tokens)
        if outcome.status == COMPLETE:
            compact_if_asked(settings, outcome.store, quiet)
        return outcome


def make_run_dir(out_dir: Path) -> None:
    """The run folder, or one line when it cannot be made (os.access can say yes and mkdir fail,
    as for /proc as root)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(f"cannot create --out {out_dir}", exc) from None


def note(message: str) -> None:
    """A one-line note on stderr (the coordinator prints it once, whatever the strategy)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def note_clamped_channels(spec: StoreSpec, settings: CollectSettings) -> None:
    if CHANNEL_WISE in spec.metrics and len(spec.channel_indices) < settings.channels:
        note(
            f"--channels {settings.channels} is more than the model has; channel_wise keeps "
            f"all {len(spec.channel_indices)} channels"
        )


def compact_if_asked(settings: CollectSettings, store: Path, quiet: bool) -> None:
    """A finished store is rewritten with sharding (O(arrays) files) unless --no-compact.

    Not while fit, plot or report read it: they would see arrays swapped under them.
    """
    if not settings.compact or is_compacted(store):
        return
    try:
        with (
            replacing_lock(store.parent),
            counting_bar("compact", unit="arrays", quiet=quiet) as progress,
        ):
            compact_store(store, progress=progress)
    except StoreInUse:
        note(f"not compacted while it is being read: run `zipfstage compact --out {store.parent}`")


@dataclass
class Session:
    """The coordinator's view of one collect invocation on a store that is open and not complete."""

    path: Path
    existing: dict[str, Any] | None
    done_tokens: int
    total_tokens: int
    started: float

    def finish(self, n_batches: int | None, new_tokens: int) -> CollectOutcome:
        """Record the time spent and, when every batch is in, trim the arrays and mark complete."""
        seconds = time.perf_counter() - self.started
        collect_seconds = float((self.existing or {}).get("collect_seconds", 0.0)) + seconds
        n_tokens = self.done_tokens + new_tokens
        try:
            if n_batches is None:
                update_attributes(self.path, {"collect_seconds": collect_seconds})
                return CollectOutcome(self.path, STOPPED, n_tokens, new_tokens, seconds)
            finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            finalize_store(
                self.path,
                n_batches,
                {
                    "collect_seconds": collect_seconds,
                    "finished": finished,
                    "planned_tokens": self.total_tokens,  # finalize_store adds n_tokens
                    "corpus_ended": n_tokens < self.total_tokens,
                },
            )
        except OSError as exc:  # every batch is committed: a rerun finishes the store
            raise write_error(
                f"cannot finish {self.path} (run the same command again)", exc
            ) from None
        return CollectOutcome(
            self.path, COMPLETE, n_tokens, new_tokens, seconds, planned_tokens=self.total_tokens
        )


def open_session(
    spec: StoreSpec, settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool = False
) -> Session | CollectOutcome:
    """Create or check the store (the caller holds the lock); an outcome if already complete.

    The disk check comes first for a new store (nothing is written when it refuses); `quiet`
    leaves out its size line, as it does the progress bar.
    """
    path = store_path(out_dir)
    if overwrite or not path.exists():  # a new store: checked before anything is written
        check_space(spec, settings, out_dir, reclaimed=allocated_bytes(path), quiet=quiet)
    existing = create_or_check_store(spec, out_dir, overwrite)
    if existing is not None:
        existing = uncommit_damaged(path, existing)
    if existing is not None and existing.get("status") == STATUS_COMPLETE:
        planned = int(existing.get("planned_tokens", 0))  # stores before it: not recorded
        return CollectOutcome(
            path, ALREADY_COMPLETE, int(existing["n_tokens"]), 0, 0.0, planned_tokens=planned
        )
    done_tokens = int(StoreWriter(path).committed().sum())
    if existing is not None:  # a resume needs room for the batches still to come
        check_space(spec, settings, out_dir, done_tokens=done_tokens, quiet=quiet)
    total = (settings.max_tokens // settings.seq_len) * settings.seq_len
    return Session(path, existing, done_tokens, total, time.perf_counter())


def create_or_check_store(spec: StoreSpec, out_dir: Path, overwrite: bool) -> dict[str, Any] | None:
    """Create the store, or check that an existing one belongs to this exact run.

    Returns the existing store's attributes when resuming, None when a new store was created.
    """
    path = store_path(out_dir)
    if path.exists() and not overwrite:
        try:
            attrs: Any = zarr.open_group(path, mode="r", zarr_format=3).attrs[ROOT_ATTR]
            existing: dict[str, Any] = dict(attrs)
        except Exception:
            raise ZipfstageError(
                f"{path} exists but is not a readable zipfstage store (its zarr.json is missing "
                f"or damaged): move it away, or collect again with `zipfstage collect "
                f"--overwrite --out {out_dir}`"
            ) from None
        if existing.get("config_hash") != spec.config_hash:
            changed = describe_changes(existing.get("identity", {}), spec.identity)
            raise ZipfstageError(
                f"{path} was collected with different settings ({changed}); use --overwrite "
                "to replace it or another --out"
            )
        return existing
    with replacing_lock(out_dir):  # not while fit, plot or report read the old store
        remove_derived_outputs(out_dir)  # a new store: the old tokenizer, fits, figures are stale
        create_store(
            path,
            spec.plan,
            spec.points,
            spec.metrics,
            spec.channel_indices,
            spec.attributes,
            topk=spec.topk,
            point_channels=spec.point_channels,
            value_dtype=spec.value_dtype,
            attention=spec.attention,
        )
    return None


def uncommit_damaged(path: Path, existing: dict[str, Any]) -> dict[str, Any]:
    """Committed batches found damaged are marked uncommitted, so this run writes them again (a
    complete store goes back to running). A store collect has not finished gets the cheap checks
    (metadata, progress and seals, file listing); a finished one is decoded and verified whole.
    A compacted store, or an array's metadata, cannot be patched: refuse with the command that
    repairs it.
    """
    finished = existing.get("status") == STATUS_COMPLETE
    root = zarr.open_group(path, mode="r", zarr_format=3)
    plan = StorePlan(**existing["plan"])
    result = check_store(path, root, plan, existing, decode=finished)
    if not result.found:
        return existing
    first = min(result.found, key=lambda damage: damage.batch)
    compacted = existing.get(LAYOUT_ATTR) == LAYOUT_SHARDED
    if compacted or not result.repairable:
        advice = repair_advice(result.found, compacted, path.parent)
        raise ZipfstageError(f"{path}/{first.describe()}: {advice}")
    broken = unreadable_files(path, root, plan, result.found)
    if broken:  # their batches now read as missing (or uncommitted): found and written again
        for file in broken:
            file.unlink(missing_ok=True)
        result = check_store(path, root, plan, existing, decode=finished)
    damaged = result.damaged_batches
    StoreWriter(path).uncommit(damaged)
    note(f"collecting {len(damaged)} batches again: {path}/{first.describe()}")
    if not finished:
        return existing
    update_attributes(path, {"status": STATUS_RUNNING})
    return {**existing, "status": STATUS_RUNNING}


def pending_batches(writer: StoreWriter) -> list[int]:
    """Batches not yet committed, in order: what a resumed run (any worker count) still owes."""
    return [int(b) for b in np.flatnonzero(writer.committed() == 0)]


def share_of(pending: list[int], index: int, count: int) -> list[int]:
    """Round-robin share of the pending batches for worker `index` of `count`."""
    return pending[index::count]


def agreed_batch_count(results: Iterable[int | None], who: str) -> int | None:
    """The data's batch count all processes report, None if any stopped early; `who` names them."""
    results = list(results)
    if any(n is None for n in results):
        return None
    counts = sorted({n for n in results if n is not None})
    if len(counts) != 1:
        raise BatchCountMismatch(f"{who} disagree on the number of batches ({counts})")
    return counts[0]


class BatchCountMismatch(ZipfstageError):
    """Processes that read the same data saw different lengths: a bug or a changing source."""

    exit_code = 1


@contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C (or SIGTERM) asks to stop after the batch in flight; a second one aborts."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""The collect loop: validate, load, lay out (or resume) the store, then write batch after batch.

Every input is checked before the store is touched, so bad input leaves nothing behind. A batch is
committed after its data is on disk; a kill at any moment loses at most the batch in flight, and a
re-run of the same command continues with the batches that are not committed.

`run_collect` is the one entry point: it runs here in one process, or hands over to
`collect.parallel` (one worker process per device) or `collect.distributed` (torchrun ranks). All
three share the pieces below, so they lay out the same store and resume the same way.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from zipfstage import __version__
from zipfstage.collect.corpus import (
    DataSpec,
    check_data_spec,
    iter_batches,
    iter_documents,
    pack_sequences,
)
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.metrics import CHANNEL_WISE, resolve_metrics
from zipfstage.collect.models import LoadedModel, load_model
from zipfstage.collect.points import Point, check_point_syntax, resolve_points
from zipfstage.collect.reducer import MetricReducer
from zipfstage.collect.write_behind import WriteBehind
from zipfstage.config import CollectSettings, collect_identity, stable_hash
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance, progress_bar
from zipfstage.store import StorePlan, StoreWriter, create_store, store_path
from zipfstage.store.layout import (
    ROOT_ATTR,
    SCHEMA_VERSION,
    STATUS_COMPLETE,
    remove_derived_outputs,
    tokenizer_path,
)
from zipfstage.store.lock import exclusive_lock
from zipfstage.store.writer import finalize_store, update_attributes


@dataclass(frozen=True)
class CollectOutcome:
    store: Path
    status: str  # "complete", "already_complete" or "stopped"
    n_tokens: int
    new_tokens: int
    seconds: float
    coordinator: bool = True  # False on torchrun ranks other than 0: they report nothing

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True)
class RunShape:
    """What the settings ask for, checked before anything expensive happens."""

    metrics: list[str]
    data: DataSpec
    max_sequences: int

    def planned_batches(self, batch_size: int) -> int:
        return math.ceil(self.max_sequences / batch_size)


def validate_settings(settings: CollectSettings, out_dir: Path) -> RunShape:
    """Cheap checks that need no model: names, sizes, paths."""
    metrics = resolve_metrics(settings.metrics)
    if settings.channels == 0 and CHANNEL_WISE in metrics:
        if "all" not in settings.metrics:
            raise ZipfstageError("metric channel_wise needs --channels of at least 1")
        metrics.remove(CHANNEL_WISE)
    check_point_syntax(settings.points)
    max_sequences = settings.max_tokens // settings.seq_len
    if max_sequences == 0:
        raise ZipfstageError(
            f"--max-tokens {settings.max_tokens} is less than one sequence of --seq-len "
            f"{settings.seq_len}; raise --max-tokens or lower --seq-len"
        )
    data = DataSpec(settings.data, settings.subset, settings.split, settings.text_field)
    check_data_spec(data)
    check_writable(out_dir)
    return RunShape(metrics, data, max_sequences)


def check_writable(out_dir: Path) -> None:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ZipfstageError(f"--out {out_dir} is a file; give a directory")
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ZipfstageError(f"--out {out_dir} is not writable ({existing} does not allow writing)")


def sample_channels(hidden_size: int, count: int, seed: int) -> list[int]:
    """The channel indices channel_wise keeps, drawn once from the seed."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(hidden_size, size=min(count, hidden_size), replace=False).tolist())


def batch_stream(
    settings: CollectSettings, shape: RunShape, tokenizer: Any
) -> Iterator[np.ndarray]:
    """The deterministic sequence of [rows, seq_len] token batches."""
    sequences = pack_sequences(
        iter_documents(shape.data), tokenizer, settings.seq_len, settings.prepend_bos
    )
    return iter_batches(sequences, settings.batch_size, shape.max_sequences)


def package_versions() -> dict[str, str]:
    import transformers

    return {
        "zipfstage": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


@dataclass
class PreparedRun:
    """A validated run: the model, the resolved points, the first batch and the store identity."""

    settings: CollectSettings
    shape: RunShape
    loaded: LoadedModel
    points: list[Point]
    channel_indices: list[int]
    identity: dict[str, Any]
    config_hash: str

    @property
    def plan(self) -> StorePlan:
        return StorePlan(
            batch_size=self.settings.batch_size,
            seq_len=self.settings.seq_len,
            planned_batches=self.shape.planned_batches(self.settings.batch_size),
        )

    def batches(self) -> Iterator[np.ndarray]:
        return batch_stream(self.settings, self.shape, self.loaded.tokenizer)

    def spec(self) -> StoreSpec:
        """What the coordinator needs to create or check the store, without the model."""
        return StoreSpec(
            config_hash=self.config_hash,
            identity=self.identity,
            plan=self.plan,
            points=[p.name for p in self.points],
            metrics=self.shape.metrics,
            channel_indices=self.channel_indices,
            attributes=store_attributes(self),
        )


@dataclass(frozen=True)
class StoreSpec:
    """A picklable description of the store a run writes (workers send it to the parent)."""

    config_hash: str
    identity: dict[str, Any]
    plan: StorePlan
    points: list[str]
    metrics: list[str]
    channel_indices: list[int]
    attributes: dict[str, Any]


def prepare_run(
    settings: CollectSettings,
    out_dir: Path,
    device: str | None = None,
    device_map: Any = None,
) -> PreparedRun:
    """Validate everything, load the model and read the first batch: no store is touched."""
    shape = validate_settings(settings, out_dir)
    loaded = load_model(
        settings.model, settings.revision, settings.dtype, device or settings.device, device_map
    )
    points = resolve_points(settings.points, loaded.architecture.n_layers)
    first = next(batch_stream(settings, shape, loaded.tokenizer), None)
    if first is None:
        raise ZipfstageError(
            f"the data {settings.data!r} gave no full sequence of {settings.seq_len} tokens "
            "(empty or too short); check --data, --text-field or lower --seq-len"
        )
    channels = sample_channels(loaded.architecture.hidden_size, settings.channels, settings.seed)
    identity = {
        "collect": collect_identity(settings),
        "model": {k: v for k, v in loaded.describe().items() if k != "dtype"},
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "data": shape.data.describe(),
        "data_fingerprint": hashlib.sha256(first.tobytes()).hexdigest()[:16],
    }
    return PreparedRun(settings, shape, loaded, points, channels, identity, stable_hash(identity))


def store_attributes(run: PreparedRun) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "config": run.identity["collect"],
        "config_hash": run.config_hash,
        "identity": run.identity,
        "model": run.loaded.describe(),
        "data": {**run.shape.data.describe(), "fingerprint": run.identity["data_fingerprint"]},
        "versions": package_versions(),
        "point_layers": {p.name: p.depth for p in run.points},
        "collect_seconds": 0.0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def open_or_create_store(run: PreparedRun, out_dir: Path, overwrite: bool) -> dict[str, Any] | None:
    """Create the store, or check that an existing one belongs to this exact run.

    Returns the existing store's attributes when resuming, None when a new store was created.
    """
    return open_or_create_spec(run.spec(), out_dir, overwrite)


def open_or_create_spec(spec: StoreSpec, out_dir: Path, overwrite: bool) -> dict[str, Any] | None:
    """`open_or_create_store` for a coordinator that holds only the spec, not the model."""
    path = store_path(out_dir)
    if path.exists() and not overwrite:
        try:
            attrs: Any = zarr.open_group(path, mode="r", zarr_format=3).attrs[ROOT_ATTR]
            existing: dict[str, Any] = dict(attrs)
        except Exception:
            raise ZipfstageError(
                f"{path} exists but is not a zipfstage store; move it away or use --overwrite"
            ) from None
        if existing.get("config_hash") != spec.config_hash:
            changed = describe_changes(existing.get("identity", {}), spec.identity)
            raise ZipfstageError(
                f"{path} was collected with different settings ({changed}); use --overwrite "
                "to replace it or another --out"
            )
        return existing
    remove_derived_outputs(out_dir)  # a new store: the old tokenizer, fits and figures are stale
    create_store(path, spec.plan, spec.points, spec.metrics, spec.channel_indices, spec.attributes)
    return None


def describe_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    """'seq_len 128 -> 256, model.name a -> b' for the keys that differ."""
    parts = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            inner = describe_changes(before, after, f"{prefix}{key}.")
            if inner:
                parts.append(inner)
        elif before != after:
            parts.append(f"{prefix}{key} {before!r} -> {after!r}")
    return ", ".join(parts) or "unknown difference"


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


def positions_for(batch: np.ndarray) -> np.ndarray:
    rows, seq_len = batch.shape
    return np.tile(np.arange(seq_len, dtype=np.int32), rows)


def collect_batches(
    run: PreparedRun,
    writer: StoreWriter,
    advance: Advance,
    stop_requested: Callable[[], bool],
    assigned: Callable[[int], bool] = lambda batch: True,
) -> int | None:
    """Forward and write every assigned, uncommitted batch.

    Returns how many batches the data holds, or None when stopped early on request.
    """
    committed = writer.committed()
    reducer = MetricReducer(run.shape.metrics, run.channel_indices)
    architecture, device = run.loaded.architecture, run.loaded.device
    seen = 0
    with (
        point_hooks(architecture, run.points, reducer),
        torch.inference_mode(),
        WriteBehind(writer, advance) as write_behind,
    ):
        for batch_index, batch in enumerate(run.batches()):
            seen = batch_index + 1
            if committed[batch_index] == batch.size or not assigned(batch_index):
                continue
            run_until_last_point(architecture, torch.from_numpy(batch).to(device))
            values = reducer.to_host()
            write_behind.submit(batch_index, batch.ravel(), positions_for(batch), values)
            if stop_requested():
                write_behind.wait()
                return None
    return seen


def pending_batches(writer: StoreWriter) -> list[int]:
    """Batches not yet committed, in order: what a resumed run (any worker count) still owes."""
    return [int(b) for b in np.flatnonzero(writer.committed() == 0)]


def share_of(pending: list[int], index: int, count: int) -> list[int]:
    """Round-robin share of the pending batches for worker `index` of `count`."""
    return pending[index::count]


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
        if n_batches is None:
            update_attributes(self.path, {"collect_seconds": collect_seconds})
            return CollectOutcome(self.path, "stopped", n_tokens, new_tokens, seconds)
        finalize_store(
            self.path,
            n_batches,
            {"collect_seconds": collect_seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        )
        return CollectOutcome(self.path, "complete", n_tokens, new_tokens, seconds)


def open_session(
    spec: StoreSpec, settings: CollectSettings, out_dir: Path, overwrite: bool
) -> Session | CollectOutcome:
    """Create or check the store (the caller holds the lock); an outcome if already complete."""
    existing = open_or_create_spec(spec, out_dir, overwrite)
    path = store_path(out_dir)
    if existing is not None and existing.get("status") == STATUS_COMPLETE:
        return CollectOutcome(path, "already_complete", int(existing["n_tokens"]), 0, 0.0)
    done_tokens = int(StoreWriter(path).committed().sum())
    total = (settings.max_tokens // settings.seq_len) * settings.seq_len
    return Session(path, existing, done_tokens, total, time.perf_counter())


def save_tokenizer(run: PreparedRun, out_dir: Path) -> None:
    """Keep the tokenizer beside the store so `report` can decode tokens without the model."""
    if not tokenizer_path(out_dir).exists():
        run.loaded.tokenizer.save_pretrained(tokenizer_path(out_dir))


def run_collect(
    settings: CollectSettings, out_dir: Path, overwrite: bool = False, quiet: bool = False
) -> CollectOutcome:
    """Collect metrics into `out_dir/store.zarr`, resuming a compatible interrupted run.

    Under torchrun every rank runs this; with several --devices a parent spawns one worker each;
    otherwise (one device, or --shard-model) it all happens in this process.
    """
    from zipfstage.collect import distributed, parallel, sharding

    out_dir = Path(out_dir)
    ranks = distributed.torchrun_ranks()
    if ranks is not None and ranks.world_size > 1:
        return distributed.run_distributed(settings, out_dir, overwrite, quiet, ranks)
    devices = settings.devices or []
    if len(devices) > 1 and not settings.shard_model:
        return parallel.run_parallel(settings, out_dir, overwrite, quiet)
    device = devices[0] if devices else settings.device
    if ranks is not None and device is None and torch.cuda.is_available():
        device = f"cuda:{ranks.local_rank}"
    device_map = sharding.shard_device_map(settings, devices) if settings.shard_model else None
    run = prepare_run(settings, out_dir, device=device, device_map=device_map)
    return run_single(run, out_dir, overwrite, quiet)


def run_single(run: PreparedRun, out_dir: Path, overwrite: bool, quiet: bool) -> CollectOutcome:
    """The whole run in this process: lock, store, every pending batch, finalize."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir):
        session = open_session(run.spec(), run.settings, out_dir, overwrite)
        if isinstance(session, CollectOutcome):
            return session
        save_tokenizer(run, out_dir)
        writer = StoreWriter(session.path)
        with (
            stop_requests() as stop_requested,
            progress_bar(
                "collect", session.total_tokens, "tok", session.done_tokens, quiet=quiet
            ) as advance,
        ):
            n_batches = collect_batches(run, writer, advance, stop_requested)
        new_tokens = int(writer.committed().sum()) - session.done_tokens
        return session.finish(n_batches, new_tokens)

"""The collect loop: validate, load, lay out (or resume) the store, then write batch after batch.

Every input is checked before the store is touched, so bad input leaves nothing behind. A batch is
committed after its data is on disk; a kill at any moment loses at most the batch in flight, and a
re-run of the same command continues from the first batch that is not committed.
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
from zipfstage.collect.data import DataSpec, check_data_spec, iter_batches, iter_documents, pack_sequences
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.metrics import CHANNEL_WISE, resolve_metrics
from zipfstage.collect.models import LoadedModel, load_model
from zipfstage.collect.points import Point, check_point_syntax, resolve_points
from zipfstage.collect.reducer import MetricReducer
from zipfstage.config import CollectSettings, collect_identity, stable_hash
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance, progress_bar
from zipfstage.store import StorePlan, StoreWriter, create_store, store_path
from zipfstage.store.layout import ROOT_ATTR, SCHEMA_VERSION, STATUS_COMPLETE, tokenizer_path
from zipfstage.store.lock import exclusive_lock
from zipfstage.store.writer import finalize_store, update_attributes


@dataclass(frozen=True)
class CollectOutcome:
    store: Path
    status: str  # "complete", "already_complete" or "stopped"
    n_tokens: int
    new_tokens: int
    seconds: float

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


def batch_stream(settings: CollectSettings, shape: RunShape, tokenizer: Any) -> Iterator[np.ndarray]:
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


def prepare_run(settings: CollectSettings, out_dir: Path, device: str | None = None) -> PreparedRun:
    """Validate everything, load the model and read the first batch: no store is touched."""
    shape = validate_settings(settings, out_dir)
    loaded = load_model(settings.model, settings.revision, settings.dtype, device or settings.device)
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
    path = store_path(out_dir)
    if path.exists() and not overwrite:
        try:
            existing = dict(zarr.open_group(path, mode="r", zarr_format=3).attrs[ROOT_ATTR])
        except Exception:
            raise ZipfstageError(
                f"{path} exists but is not a zipfstage store; move it away or use --overwrite"
            ) from None
        if existing.get("config_hash") != run.config_hash:
            changed = describe_changes(existing.get("identity", {}), run.identity)
            raise ZipfstageError(
                f"{path} was collected with different settings ({changed}); use --overwrite "
                "to replace it or another --out"
            )
        return existing
    create_store(
        path, run.plan, [p.name for p in run.points], run.shape.metrics, run.channel_indices,
        store_attributes(run),
    )
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
    with point_hooks(architecture, run.points, reducer), torch.inference_mode():
        for batch_index, batch in enumerate(run.batches()):
            seen = batch_index + 1
            if committed[batch_index] == batch.size or not assigned(batch_index):
                continue
            run_until_last_point(architecture, torch.from_numpy(batch).to(device))
            values = reducer.to_host()
            writer.write_batch(batch_index, batch.ravel(), positions_for(batch), values)
            advance(batch.size)
            if stop_requested():
                return None
    return seen


def run_collect(
    settings: CollectSettings, out_dir: Path, overwrite: bool = False, quiet: bool = False
) -> CollectOutcome:
    """Collect metrics into `out_dir/store.zarr`, resuming a compatible interrupted run."""
    out_dir = Path(out_dir)
    run = prepare_run(settings, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = store_path(out_dir)
    with exclusive_lock(out_dir):
        existing = open_or_create_store(run, out_dir, overwrite)
        if existing is not None and existing.get("status") == STATUS_COMPLETE:
            return CollectOutcome(path, "already_complete", int(existing["n_tokens"]), 0, 0.0)
        if not tokenizer_path(out_dir).exists():
            run.loaded.tokenizer.save_pretrained(tokenizer_path(out_dir))
        writer = StoreWriter(path)
        done_tokens = int(writer.committed().sum())
        total = run.shape.max_sequences * settings.seq_len
        started = time.perf_counter()
        with (
            stop_requests() as stop_requested,
            progress_bar("collect", total, "tok", done_tokens, quiet=quiet) as advance,
        ):
            n_batches = collect_batches(run, writer, advance, stop_requested)
        seconds = time.perf_counter() - started
        new_tokens = int(writer.committed().sum()) - done_tokens
        previous_seconds = float((existing or {}).get("collect_seconds", 0.0))
        if n_batches is None:
            update_attributes(path, {"collect_seconds": previous_seconds + seconds})
            return CollectOutcome(path, "stopped", done_tokens + new_tokens, new_tokens, seconds)
        finalize_store(path, n_batches, {"collect_seconds": previous_seconds + seconds,
                                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return CollectOutcome(path, "complete", done_tokens + new_tokens, new_tokens, seconds)

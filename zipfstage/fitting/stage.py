"""The fit stage: read committed metrics, subsample, fit in a process pool, write the records.

One job per function: `plan_pairs` (hash the inputs, skip what is unchanged), `read_tasks` (read
and subsample), `schedule` (fit, in a pool), `regroup` (gather a metric's channels), `write_pair`
(store one record). I/O stays here; the science is in `fit_power_law`. Only this (parent) process
writes to the store, so workers never race on Zarr metadata. Workers use the "spawn" context: fork
after torch or numba threads exist is unsafe, and spawned workers load numba's on-disk kernel cache
instead of compiling.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zipfstage.config import FitSettings, stable_hash
from zipfstage.fitting.api import fit_power_law
from zipfstage.fitting.continuous import KsRule
from zipfstage.fitting.discrete import is_integer_valued
from zipfstage.point_names import ATTN, site_of
from zipfstage.records import ATTN_FITTED, CHANNEL_WISE, STATUS_FAILED, FitRecord
from zipfstage.stage import Progress, StageResult
from zipfstage.store.fits import read_fit_records, read_input_hash, write_fit, write_fits_json
from zipfstage.store.lock import holds_reading_lock
from zipfstage.store.reader import StoreReader, open_store

#: bump when a change to the fitting code should invalidate stored fits
FIT_VERSION = 4

Key = tuple[str, str]


@dataclass(frozen=True)
class Pair:
    """One (point, metric) to fit, and the hash of everything its fit depends on."""

    point: str
    metric: str
    input_hash: str

    @property
    def key(self) -> Key:
        return (self.point, self.metric)


@dataclass(frozen=True)
class FitTask:
    """One fit: plain data, so it pickles cheaply to a worker."""

    point: str
    metric: str
    channel: int | None
    values: np.ndarray
    bootstrap: int
    seed: int
    min_tail: int
    ks: KsRule = "powerlaw"
    discrete: bool = False
    #: each value's sequence: the bootstrap draws whole sequences (tokens of one are dependent)
    groups: np.ndarray | None = None


Fitted = tuple[FitTask, FitRecord]


@holds_reading_lock
def run(
    settings: FitSettings,
    run_dir: Path,
    progress: Progress | None = None,
    *,
    force: bool = False,
) -> StageResult:
    """Fit every selected (point, metric) and sampled channel; skip those with unchanged inputs.

    `force` refits everything. Raises `ZipfstageError` for a missing or empty store and unknown
    points or metrics.
    """
    started = time.perf_counter()
    store = open_store(run_dir)
    store.require_data()
    pairs, skipped = plan_pairs(run_dir, store, settings, force)
    tasks = {pair.key: read_tasks(store, pair, settings) for pair in pairs}
    expected = {key: len(group) for key, group in tasks.items()}
    fitted = schedule([t for group in tasks.values() for t in group], settings.workers, progress)
    hashes = {pair.key: pair.input_hash for pair in pairs}
    n_pairs = n_fits = n_not_ok = 0
    for key, parts in regroup(fitted, expected):
        records = [
            record.replace(
                skip_positions=settings.skip_positions,
                store_tokens=store.n_tokens,
                store_id=store.attributes.store_id,
            )
            for _, record in parts
        ]
        write_pair(run_dir, key, records, hashes[key], store.attributes.store_id)
        n_pairs += 1
        n_fits += len(records)
        n_not_ok += sum(not r.ok for r in records)
    written = n_pairs or skipped
    fits_json = write_fits_json(run_dir, read_fit_records(run_dir)) if written else None
    summary = (
        f"fitted {n_pairs} (point, metric) pairs ({n_fits} fits, {n_not_ok} not ok), "
        f"skipped {len(skipped)} unchanged; summary in {fits_json}"
    )
    return StageResult(
        stage="fit",
        summary=summary,
        outputs=() if fits_json is None else (fits_json,),
        seconds=time.perf_counter() - started,
        counts={"fitted": n_pairs, "skipped": len(skipped), "fits": n_fits, "not_ok": n_not_ok},
    )


def plan_pairs(
    run_dir: Path, store: StoreReader, settings: FitSettings, force: bool
) -> tuple[list[Pair], list[Key]]:
    """Hash each selected pair's inputs; a pair whose stored fit has the same hash is skipped."""
    pairs = selected_pairs(store, settings.points, settings.metrics)
    fit_settings = {
        "max_samples": settings.max_samples,
        "bootstrap": settings.bootstrap,
        "seed": settings.seed,
        "min_tail": settings.min_tail,
        "ks": settings.ks,
        "discrete": settings.discrete,
        "skip_positions": settings.skip_positions,
        "version": FIT_VERSION,
    }
    todo: list[Pair] = []
    skipped: list[Key] = []
    for point, metric in pairs:
        inputs = {
            "store": store.attributes.generation,
            "n_tokens": store.n_tokens,
            "point": point,
            "metric": metric,
            "settings": fit_settings,
        }
        input_hash = stable_hash(inputs)
        if not force and read_input_hash(run_dir, point, metric) == input_hash:
            skipped.append((point, metric))
        else:
            todo.append(Pair(point, metric, input_hash))
    return todo, skipped


def selected_pairs(store: StoreReader, points: list[str], metrics: list[str]) -> list[Key]:
    """Every selected (point, metric): the hidden-state pairs, then the attn points' fitted
    metrics (ATTN_FITTED, one fit per head). Points and metrics are "all" or names, and a name
    may be an attn point (`layer_3.attn`) or metric (`sink`): `--metrics sink` fits only those."""
    every_point, every_metric = points in ([], ["all"]), metrics in ([], ["all"])
    attn_points = [p for p in points if p in store.attention_points]
    attn_metrics = [m for m in metrics if m in ATTN_FITTED]
    hidden_points = [p for p in points if p not in attn_points]
    hidden_metrics = [m for m in metrics if m not in attn_metrics]
    pairs: list[Key] = []
    if (every_point or hidden_points) and (every_metric or hidden_metrics):
        chosen, measures = store.select(hidden_points or ["all"], hidden_metrics or ["all"])
        pairs += [(point, metric) for point in chosen for metric in measures]
    return pairs + [
        (point, metric)
        for point in store.attention_points
        if every_point or point in attn_points
        for metric in ATTN_FITTED
        if every_metric or metric in attn_metrics
    ]


def per_column(point: str, metric: str) -> bool:
    """Whether a pair is fitted column by column: channel_wise's channels, an attn point's heads."""
    return metric == CHANNEL_WISE or site_of(point) == ATTN


def read_tasks(store: StoreReader, pair: Pair, settings: FitSettings) -> list[FitTask]:
    """Read one pair's values, subsample seeded rows, and split channel_wise into channels."""
    data = store.metric(pair.point, pair.metric, settings.skip_positions)
    groups = _sequences(store, settings.skip_positions, data.shape[0])
    rng = np.random.default_rng([settings.seed, zlib.crc32(f"{pair.point}/{pair.metric}".encode())])
    drawn = subsample_rows(data.shape[0], settings.max_samples, rng)
    if drawn is not None:
        data = data[drawn]
        groups = None if groups is None else groups[drawn]
    if site_of(pair.point) == ATTN:  # the heads are the columns; the values are >= 0 already
        columns: list[tuple[int | None, np.ndarray]] = [
            (head, data[:, head].astype(np.float64)) for head in range(data.shape[1])
        ]
    elif pair.metric != CHANNEL_WISE:
        columns = [(None, np.asarray(data, np.float64))]
    else:
        channels = store.point_channels(pair.point)
        labels = channels if len(channels) == data.shape[1] else list(range(data.shape[1]))
        columns = [(int(c), np.abs(data[:, j]).astype(np.float64)) for j, c in enumerate(labels)]
    grid = _storage_grid_dtype(store)
    return [
        FitTask(
            pair.point,
            pair.metric,
            channel,
            values,
            settings.bootstrap,
            settings.seed,
            settings.min_tail,
            settings.ks,
            use_discrete(settings.discrete, values, grid),
            groups,
        )
        for channel, values in columns
    ]


#: collection dtypes whose values lie on a coarse float grid: large ones are all integers
_GRID_DTYPES = ("bfloat16", "float16")


def _storage_grid_dtype(store: StoreReader) -> bool:
    """Whether the store was collected in bf16/fp16 (its `dtype` attribute)."""
    attributes = store.attributes
    collect = attributes.config.get("collect")
    candidates = (
        attributes.identity.get("dtype"),
        attributes.model.get("dtype"),
        collect.get("dtype") if isinstance(collect, dict) else None,
    )
    return any(str(d).removeprefix("torch.") in _GRID_DTYPES for d in candidates if d)


def use_discrete(choice: str, values: np.ndarray, on_grid: bool) -> bool:
    """--discrete: yes, no, or auto = every value an integer and not a bf16/fp16 store's grid."""
    if choice == "auto":
        return not on_grid and is_integer_valued(values)
    return choice == "yes"


def subsample_rows(rows: int, max_samples: int, rng: np.random.Generator) -> np.ndarray | None:
    """The rows `fit --max-samples` keeps: a seeded draw without replacement, in store order
    (None: keep all). One function, so `benchmarks/bench_calibration.py` draws exactly as `fit`."""
    if not max_samples or rows <= max_samples:
        return None
    return np.sort(rng.choice(rows, size=max_samples, replace=False))


def _sequences(store: StoreReader, skip_positions: int, rows: int) -> np.ndarray | None:
    """Each row's sequence, for the rows `store.metric` returns (None if the lengths disagree, as
    they can in a store whose final trim was interrupted: the bootstrap then draws iid)."""
    positions = store.positions()
    groups = sequence_index(positions)[positions >= skip_positions]
    return groups if groups.size == rows else None


def sequence_index(positions: np.ndarray) -> np.ndarray:
    """Number each token's sequence: the store holds sequences whole and in order, so a new one
    starts wherever the position does not grow (this holds after any rows are left out, too)."""
    starts = np.ones(positions.size, dtype=bool)
    np.less_equal(positions[1:], positions[:-1], out=starts[1:])
    return np.cumsum(starts, dtype=np.int64) - 1


def schedule(tasks: list[FitTask], workers: int, progress: Progress | None) -> Iterator[Fitted]:
    """Fit every task, in a spawn pool when there are workers to use; reports progress."""
    total = len(tasks)
    if progress:
        progress(0, total)
    n_workers = min(workers or os.cpu_count() or 1, total)
    if n_workers <= 1:
        done: Iterable[Fitted] = map(fit_task, tasks)
        yield from _counted(done, total, progress)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        # largest first keeps the pool busy to the end
        order = sorted(tasks, key=lambda t: -t.values.size)
        yield from _counted(pool.map(fit_task, order, chunksize=1), total, progress)


def _counted(fitted: Iterable[Fitted], total: int, progress: Progress | None) -> Iterator[Fitted]:
    for count, item in enumerate(fitted, start=1):
        yield item
        if progress:
            progress(count, total)


def fit_task(task: FitTask) -> Fitted:
    """Fit one task; any failure becomes a record with status "failed", never an exception."""
    try:
        result = fit_power_law(
            task.values,
            min_tail=task.min_tail,
            bootstrap=task.bootstrap,
            seed=task.seed,
            scan=True,
            ks=task.ks,
            discrete=task.discrete,
            groups=task.groups,
        )
    except Exception as exc:  # a batch of fits must finish: report, do not raise
        reason = f"{type(exc).__name__}: {exc}"
        result = FitRecord(status=STATUS_FAILED, reason=reason, n=int(task.values.size))
    return task, result.replace(point=task.point, metric=task.metric, channel=task.channel)


def regroup(
    fitted: Iterable[Fitted], expected: dict[Key, int]
) -> Iterator[tuple[Key, list[Fitted]]]:
    """Yield each pair's fits, in channel order, as soon as the last of them is done."""
    waiting: dict[Key, list[Fitted]] = {}
    for task, record in fitted:
        key = (task.point, task.metric)
        waiting.setdefault(key, []).append((task, record))
        if len(waiting[key]) == expected[key]:
            parts = waiting.pop(key)
            parts.sort(key=lambda part: part[0].channel or 0)
            yield key, parts


def write_pair(
    run_dir: Path, key: Key, records: list[FitRecord], input_hash: str, store_id: str | None
) -> None:
    """Store one pair's record (a list of records for channel_wise) and its curves, into the
    store generation `store_id` only."""
    point, metric = key
    if not per_column(point, metric):
        record, curves = records[0].to_record(), records[0].curves()
        write_fit(run_dir, point, metric, record, input_hash, curves, store_id=store_id)
        return
    stored = [record.to_record() for record in records]
    write_fit(run_dir, point, metric, stored, input_hash, stack_curves(records), store_id=store_id)


def stack_curves(records: list[FitRecord]) -> dict[str, np.ndarray]:
    """One array per curve name for all channels, concatenated in channel order, plus
    `<prefix>_channel` naming each element's channel (few arrays keep the write fast)."""
    stacked: dict[str, list[np.ndarray]] = {}
    for record in records:
        for name, values in record.curves().items():
            stacked.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
            prefix = name.split("_")[0]
            owner = np.full(len(values), float(record.channel or 0))
            if name in ("scan_xmin", "bootstrap_alpha"):
                stacked.setdefault(f"{prefix}_channel", []).append(owner)
    return {name: np.concatenate(chunks) for name, chunks in stacked.items()}

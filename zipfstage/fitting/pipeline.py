"""The store-level fit run: read committed metrics, subsample, fit in a process pool, write results.

I/O stays here; the science is in `fit_power_law`. Only this (parent) process writes to the store,
so workers never race on Zarr metadata. Workers use the "spawn" context: fork after torch or numba
threads exist is unsafe, and spawned workers load numba's on-disk kernel cache instead of compiling.
"""

from __future__ import annotations

import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zipfstage.config import stable_hash
from zipfstage.fitting.api import fit_power_law
from zipfstage.fitting.continuous import KsRule
from zipfstage.fitting.result import STATUS_FAILED
from zipfstage.store.fits import read_fit_records, read_input_hash, write_fit, write_fits_json
from zipfstage.store.layout import CHANNEL_WISE
from zipfstage.store.reader import open_store

#: bump when a change to the fitting code should invalidate stored fits
FIT_VERSION = 3


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


@dataclass
class FitRunSummary:
    fitted: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_fits: int = 0
    n_not_ok: int = 0
    fits_json: Path | None = None


Progress = Callable[[int, int], None]


def run_fits(
    out_dir: Path,
    *,
    max_samples: int = 50_000,
    bootstrap: int = 0,
    points: list[str] | None = None,
    metrics: list[str] | None = None,
    workers: int = 0,
    seed: int = 0,
    min_tail: int = 50,
    skip_positions: int = 1,
    ks: KsRule = "powerlaw",
    force: bool = False,
    progress: Progress | None = None,
) -> FitRunSummary:
    """Fit every selected (point, metric) and sampled channel; skip those with unchanged inputs.

    Raises `ZipfstageError` for a missing or empty store and unknown points or metrics.
    """
    store = open_store(out_dir)
    store.require_data()
    chosen_points, chosen_metrics = store.select(points or ["all"], metrics or ["all"])
    settings = {
        "max_samples": max_samples,
        "bootstrap": bootstrap,
        "seed": seed,
        "min_tail": min_tail,
        "skip_positions": skip_positions,
        "ks": ks,
        "version": FIT_VERSION,
    }
    summary = FitRunSummary()
    tasks: list[FitTask] = []
    expected: dict[tuple[str, str], int] = {}
    hashes: dict[tuple[str, str], str] = {}
    for point in chosen_points:
        for metric in chosen_metrics:
            input_hash = stable_hash(
                {
                    "store": store.info.get("config_hash"),
                    "n_tokens": store.n_tokens,
                    "point": point,
                    "metric": metric,
                    "settings": settings,
                }
            )
            if not force and read_input_hash(out_dir, point, metric) == input_hash:
                summary.skipped.append((point, metric))
                continue
            hashes[(point, metric)] = input_hash
            values = store.metric(point, metric, skip_positions)
            new = list(
                _tasks(
                    values,
                    point,
                    metric,
                    store.channel_indices,
                    max_samples,
                    bootstrap,
                    seed,
                    min_tail,
                    ks,
                )
            )
            expected[(point, metric)] = len(new)
            tasks.extend(new)
    done: dict[tuple[str, str], list[tuple[FitTask, dict[str, Any], dict[str, np.ndarray]]]] = {}
    total = len(tasks)
    if progress:
        progress(0, total)
    for count, (task, record, curves) in enumerate(_execute(tasks, workers), start=1):
        key = (task.point, task.metric)
        record = {**record, "skip_positions": skip_positions, "store_tokens": store.n_tokens}
        done.setdefault(key, []).append((task, record, curves))
        summary.n_fits += 1
        summary.n_not_ok += record["status"] != "ok"
        if len(done[key]) == expected[key]:
            _store(out_dir, key, done.pop(key), hashes[key])
            summary.fitted.append(key)
        if progress:
            progress(count, total)
    if summary.fitted or summary.skipped:
        summary.fits_json = write_fits_json(out_dir, read_fit_records(out_dir))
    return summary


def _tasks(
    data: np.ndarray,
    point: str,
    metric: str,
    channels: list[int],
    max_samples: int,
    bootstrap: int,
    seed: int,
    min_tail: int,
    ks: KsRule = "powerlaw",
) -> Iterator[FitTask]:
    rng = np.random.default_rng([seed, zlib.crc32(f"{point}/{metric}".encode())])
    rows = data.shape[0]
    if max_samples and rows > max_samples:
        pick = np.sort(rng.choice(rows, size=max_samples, replace=False))
        data = data[pick]
    if metric == CHANNEL_WISE:
        labels = channels if len(channels) == data.shape[1] else list(range(data.shape[1]))
        for j, channel in enumerate(labels):
            yield FitTask(
                point,
                metric,
                int(channel),
                np.abs(data[:, j]).astype(np.float64),
                bootstrap,
                seed,
                min_tail,
                ks,
            )
    else:
        yield FitTask(
            point, metric, None, np.asarray(data, dtype=np.float64), bootstrap, seed, min_tail, ks
        )


def _execute(
    tasks: list[FitTask], workers: int
) -> Iterator[tuple[FitTask, dict[str, Any], dict[str, np.ndarray]]]:
    n_workers = min(workers or os.cpu_count() or 1, len(tasks))
    if n_workers <= 1:
        for task in tasks:
            yield fit_task(task)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        # largest first keeps the pool busy to the end
        order = sorted(tasks, key=lambda t: -t.values.size)
        yield from pool.map(fit_task, order, chunksize=1)


def fit_task(task: FitTask) -> tuple[FitTask, dict[str, Any], dict[str, np.ndarray]]:
    """Fit one task; any failure becomes a record with status "failed", never an exception."""
    try:
        result = fit_power_law(
            task.values,
            min_tail=task.min_tail,
            bootstrap=task.bootstrap,
            seed=task.seed,
            scan=True,
            ks=task.ks,
        )
        record, curves = result.to_record(), result.curves()
    except Exception as exc:  # a batch of fits must finish: report, do not raise
        record = {
            "status": STATUS_FAILED,
            "reason": f"{type(exc).__name__}: {exc}",
            "n": int(task.values.size),
        }
        curves = {}
    if task.channel is not None:
        record["channel"] = task.channel
    return task, record, curves


def _store(
    out_dir: Path,
    key: tuple[str, str],
    parts: list[tuple[FitTask, dict[str, Any], dict[str, np.ndarray]]],
    input_hash: str,
) -> None:
    point, metric = key
    if metric != CHANNEL_WISE:
        _, record, curves = parts[0]
        write_fit(out_dir, point, metric, record, input_hash, curves)
        return
    parts.sort(key=lambda part: part[0].channel or 0)
    records = [record for _, record, _ in parts]
    write_fit(out_dir, point, metric, records, input_hash, _stack_curves(parts))


def _stack_curves(
    parts: list[tuple[FitTask, dict[str, Any], dict[str, np.ndarray]]],
) -> dict[str, np.ndarray]:
    """One array per curve name for all channels, concatenated in channel order, plus
    `<prefix>_channel` naming each element's channel (few arrays keep the write fast)."""
    stacked: dict[str, list[np.ndarray]] = {}
    for task, _, curves in parts:
        for name, values in curves.items():
            stacked.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
            prefix = name.split("_")[0]
            owner = np.full(len(values), float(task.channel or 0))
            if name in ("scan_xmin", "bootstrap_alpha"):
                stacked.setdefault(f"{prefix}_channel", []).append(owner)
    return {name: np.concatenate(chunks) for name, chunks in stacked.items()}

"""Draw figure jobs in a process pool, skipping those whose inputs did not change.

Matplotlib holds the GIL while it draws, so figures scale with processes, not threads. Jobs go
out in bundles that share one read of their samples (a metric's points in depth order); each
worker reads the store and fits once. Workers use the "spawn" context, as `fit` does: fork after
zarr's or numba's threads exist is unsafe. Only this (parent) process writes the manifest.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from zipfstage.plotting import style
from zipfstage.plotting.jobs import PER_FIT, FigureJob, RunData, draw
from zipfstage.plotting.manifest import InputHasher, Manifest
from zipfstage.plotting.samples import SampleCache
from zipfstage.stage import Progress

Bundle = tuple[FigureJob, ...]
#: per-fit jobs per bundle at most: small enough to balance the pool, large enough to share reads
MAX_BUNDLE = 24


@dataclass
class Rendered:
    """Every job's files by job name (drawn now or kept from before), and how many figures were
    drawn now and kept."""

    files: dict[str, list[Path]] = field(default_factory=dict)
    drawn: int = 0
    kept: int = 0

    @property
    def paths(self) -> list[Path]:
        return [p for paths in self.files.values() for p in paths]


@dataclass
class _Worker:
    data: RunData
    directory: Path
    extensions: tuple[str, ...]


_WORKER: _Worker | None = None


def render(
    data: RunData,
    jobs: list[FigureJob],
    directory: Path,
    extensions: tuple[str, ...],
    *,
    workers: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> Rendered:
    """Draw every job whose inputs changed (all with `force`) under `directory`; 0 workers = one
    per core. The manifest is saved even when drawing stops early, so a rerun keeps what was done.
    """
    hasher = InputHasher(data, extensions)
    manifest = Manifest.load(directory)
    rendered = Rendered()
    hashes: dict[str, str] = {}
    todo: list[FigureJob] = []
    for job in jobs:
        hashes[job.name] = hasher(job)
        found = None if force else manifest.files(job.name, hashes[job.name])
        if found is None:
            todo.append(job)
        else:
            rendered.files[job.name] = found
    rendered.kept = sum(bool(paths) for paths in rendered.files.values())
    if progress:
        progress(0, len(todo))
    try:
        work = _drawn(data, bundles(todo, workers), directory, extensions, workers)
        for done, (name, paths) in enumerate(work, start=1):
            manifest.record(name, hashes[name], paths)
            rendered.files[name] = paths
            rendered.drawn += bool(paths)  # an outlier figure may have nothing to draw
            if progress:
                progress(done, len(todo))
    finally:
        manifest.save()
    rendered.files = {job.name: rendered.files[job.name] for job in jobs}  # the jobs' order
    return rendered


def bundles(jobs: list[FigureJob], workers: int) -> list[Bundle]:
    """Whole-run figures one each, first (the slowest); per-fit figures in runs of one metric,
    about four bundles per worker."""
    single = [(job,) for job in jobs if job.kind not in PER_FIT]
    per_fit = sorted(
        (job for job in jobs if job.kind in PER_FIT), key=lambda job: job.metric or ""
    )  # stable: each metric's points stay in depth order
    size = max(1, min(MAX_BUNDLE, math.ceil(len(per_fit) / (4 * _pool_size(workers)))))
    runs: list[Bundle] = []
    for job in per_fit:
        if runs and len(runs[-1]) < size and runs[-1][0].metric == job.metric:
            runs[-1] = (*runs[-1], job)
        else:
            runs.append((job,))
    return single + runs


def _pool_size(workers: int) -> int:
    return workers or os.cpu_count() or 1


def _drawn(
    data: RunData,
    work: list[Bundle],
    directory: Path,
    extensions: tuple[str, ...],
    workers: int,
) -> Iterator[tuple[str, list[Path]]]:
    """(job name, files written) as each bundle finishes: in this process for one worker."""
    global _WORKER
    n_workers = min(_pool_size(workers), len(work))
    if n_workers <= 1:
        _WORKER = _Worker(data, directory, extensions)
        try:
            for bundle in work:
                yield from draw_bundle(bundle)
        finally:
            _WORKER = None
        return
    context = multiprocessing.get_context("spawn")
    start = (data.run_dir, directory, extensions)
    with ProcessPoolExecutor(n_workers, context, initializer=_start, initargs=start) as pool:
        futures = [pool.submit(draw_bundle, bundle) for bundle in work]
        for future in as_completed(futures):
            yield from future.result()


def _start(run_dir: Path, directory: Path, extensions: tuple[str, ...]) -> None:
    """A worker's initializer: read the store description and every fit once."""
    global _WORKER
    _WORKER = _Worker(RunData.load(run_dir), directory, extensions)


def draw_bundle(bundle: Bundle) -> list[tuple[str, list[Path]]]:
    """Draw and save one bundle's figures, sharing their samples; runs in a worker."""
    worker = _WORKER
    assert worker is not None, "draw_bundle runs after _start"
    cache = SampleCache(worker.data.reader, worker.data.table)
    done = []
    for job in bundle:
        figure = draw(job, worker.data, cache)
        paths: list[Path] = []
        if figure is not None:
            stem = worker.directory / job.name
            paths = style.save_figure(figure, stem, worker.extensions, job.dpi)
        done.append((job.name, paths))
    return done

"""Build a store with known heavy-tailed data, without a model: for fit, plot and report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zipfstage.store import StorePlan, StoreWriter, create_store, store_path
from zipfstage.store.layout import SCHEMA_VERSION
from zipfstage.store.writer import finalize_store

SCALAR_METRICS = ["rms", "max_abs", "kurtosis"]


def make_synthetic_store(
    out_dir: Path,
    points: tuple[str, ...] = ("embed", "layer_1", "layer_3"),
    metrics: tuple[str, ...] = (*SCALAR_METRICS, "channel_wise"),
    n_batches: int = 4,
    batch_size: int = 4,
    seq_len: int = 128,
    channels: int = 4,
    seed: int = 0,
    complete: bool = True,
) -> Path:
    """Pareto tails whose alpha grows with depth (2.0, 2.5, 3.0, ...), lognormal bodies."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = store_path(out_dir)
    plan = StorePlan(batch_size=batch_size, seq_len=seq_len, planned_batches=n_batches)
    channel_indices = sorted(rng.choice(64, size=channels, replace=False).tolist())
    attributes = {
        "schema_version": SCHEMA_VERSION,
        "config": {"model": "synthetic", "data": "synthetic", "seed": seed},
        "config_hash": "synthetic",
        "model": {
            "name": "synthetic",
            "revision": None,
            "dtype": "float32",
            "architecture": "Synthetic",
            "n_layers": 4,
            "hidden_size": 64,
        },
        "data": {"source": "synthetic", "fingerprint": "none"},
        "versions": {"zipfstage": "test"},
        "point_layers": {p: (-1 if p == "embed" else int(p.split("_")[1])) for p in points},
    }
    create_store(path, plan, list(points), list(metrics), channel_indices, attributes)
    writer = StoreWriter(path)
    rows = plan.rows_per_batch
    for batch in range(n_batches):
        ids = rng.integers(0, 500, size=rows)
        positions = np.tile(np.arange(seq_len), batch_size)
        values = {}
        for depth, point in enumerate(points):
            alpha = 2.0 + 0.5 * depth
            for metric in metrics:
                if metric == "channel_wise":
                    signs = rng.choice([-1.0, 1.0], size=(rows, channels))
                    data = signs * (rng.pareto(alpha - 1, size=(rows, channels)) + 1)
                else:
                    data = (rng.pareto(alpha - 1, size=rows) + 1) * 0.5
                values[(point, metric)] = data.astype(np.float32)
        writer.write_batch(batch, ids, positions, values)
        if not complete and batch == n_batches - 2:
            break
    if complete:
        finalize_store(path, n_batches, {"collect_seconds": 1.5})
    return path

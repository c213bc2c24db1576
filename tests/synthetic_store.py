"""Build a store with known heavy-tailed data, without a model: for fit, plot and report tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

from zipfstage.store import StorePlan, StoreWriter, create_store, store_path
from zipfstage.store.checksums import checksum_columns, checksum_row, crc
from zipfstage.store.layout import SCHEMA_VERSION, root_info
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


#: plant(point, batch, hidden [rows, width] signed, positions, ids) edits `hidden` in place
Plant = Callable[[str, int, np.ndarray, np.ndarray, np.ndarray], None]


def make_topk_store(
    out_dir: Path,
    points: tuple[str, ...] = ("embed", "layer_0", "layer_1", "layer_2", "layer_3"),
    plant: Plant | None = None,
    widths: dict[str, int] | None = None,
    n_batches: int = 2,
    batch_size: int = 4,
    seq_len: int = 64,
    width: int = 32,
    k: int = 8,
    n_layers: int = 4,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A store with the top-k channel arrays of TOPK_CONTRACT, computed from full Gaussian hidden
    vectors that `plant` may edit; returns those full vectors ([N, width] per point, signed) so
    tests can compute exact answers."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = store_path(out_dir)
    plan = StorePlan(batch_size=batch_size, seq_len=seq_len, planned_batches=n_batches)
    layers = {p: -1 if p == "embed" else int(p.split(".")[0].split("_")[1]) for p in points}
    attributes = {
        "schema_version": SCHEMA_VERSION,
        "config": {"model": "synthetic", "data": "synthetic", "seed": seed},
        "config_hash": f"topk-{seed}",
        "model": {"name": "synthetic", "n_layers": n_layers, "hidden_size": width},
        "data": {"source": "synthetic"},
        "point_layers": layers,
    }
    scalars = ["max_abs", "median_abs", "hill_tail"]
    create_store(path, plan, list(points), scalars, [], attributes)
    widths = {p: (widths or {}).get(p, width) for p in points}
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    rows = plan.rows_per_batch
    for point in points:
        for name, dtype, fill in TOPK_LAYOUT:
            root.create_array(
                f"metrics/{point}/{name}",
                shape=(plan.planned_rows, k),
                chunks=(rows, k),
                dtype=dtype,
                fill_value=fill,
                attributes={"width": widths[point], "k": k, "k_requested": k},
            )
    writer = StoreWriter(path)
    full: dict[str, list[np.ndarray]] = {p: [] for p in points}
    for batch in range(n_batches):
        ids = rng.integers(1, 500, size=rows)
        positions = np.tile(np.arange(seq_len), batch_size)
        values = {}
        for point in points:
            hidden = rng.normal(size=(rows, widths[point]))
            if plant is not None:
                plant(point, batch, hidden, positions, ids)
            full[point].append(hidden)
            region = slice(batch * rows, (batch + 1) * rows)
            for name, data in topk_of(hidden, k).items():
                root[f"metrics/{point}/{name}"][region] = data  # type: ignore[index]
            magnitude = np.abs(hidden)
            values[(point, "max_abs")] = magnitude.max(axis=1).astype(np.float32)
            values[(point, "median_abs")] = np.median(magnitude, axis=1).astype(np.float32)
            hill_k = max(10, widths[point] // 100)
            values[(point, "hill_tail")] = hill_reference(magnitude, hill_k).astype(np.float32)
        writer.write_batch(batch, ids, positions, values)
    finalize_store(path, n_batches, {"collect_seconds": 1.0})
    return {p: np.concatenate(parts) for p, parts in full.items()}


TOPK_LAYOUT = (
    ("topk_abs", "float32", float("nan")),
    ("topk_channel", "int32", -1),
    ("topk_sign", "int8", 0),
)


def topk_of(hidden: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The contract's topk_abs / topk_channel / topk_sign of full vectors (NaN/-1/0 past width)."""
    k_used = min(k, hidden.shape[1])
    order = np.argsort(-np.abs(hidden), axis=1, kind="stable")[:, :k_used]
    chosen = np.take_along_axis(hidden, order, axis=1)
    pad = k - k_used
    return {
        "topk_abs": np.pad(np.abs(chosen), ((0, 0), (0, pad)), constant_values=np.nan).astype(
            np.float32
        ),
        "topk_channel": np.pad(order, ((0, 0), (0, pad)), constant_values=-1).astype(np.int32),
        "topk_sign": np.pad(np.sign(chosen), ((0, 0), (0, pad))).astype(np.int8),
    }


def hill_reference(magnitude: np.ndarray, k_h: int) -> np.ndarray:
    """Direct Hill estimate per row: k_h / sum_{i<=k_h} log(x_(i) / x_(k_h+1))."""
    ordered = -np.sort(-magnitude, axis=1)
    out = np.full(len(magnitude), np.nan)
    for r, row in enumerate(ordered):
        if row[k_h] > 0:
            out[r] = k_h / sum(np.log(row[i] / row[k_h]) for i in range(k_h))
    return out


def reseal(path: Path) -> None:
    """Rewrite every committed batch's checksum row from the data as it is now: for tests that
    edit a store's values on purpose (through zarr, as collect never does)."""
    root = zarr.open_group(path, mode="r+")
    info = root_info(root)
    plan = StorePlan(**info["plan"])
    columns = checksum_columns(root)
    counts = np.asarray(root["progress"][:])  # type: ignore[index]
    digests = np.asarray(root["batch_digest"][:])  # type: ignore[index]
    table = root["batch_checksum"]
    data = {name: np.asarray(root[name][:]) for name in columns}  # type: ignore[index]
    for batch in np.flatnonzero(counts):
        rows = slice(
            plan.batch_rows(int(batch)).start,
            plan.batch_rows(int(batch)).start + int(counts[batch]),
        )
        crcs = np.array([crc(data[name][rows]) for name in columns], dtype=np.uint32)
        table[int(batch)] = checksum_row(crcs, int(counts[batch]), int(digests[batch]))  # type: ignore[index]

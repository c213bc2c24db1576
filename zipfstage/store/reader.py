"""Read what `collect` committed, and only that: later stages never see half-written batches."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from zipfstage.errors import ZipfstageError
from zipfstage.records import ATTN_METRICS, CHANNEL_WISE, TOPK_ARRAYS
from zipfstage.store.attributes import RunAttributes
from zipfstage.store.integrity import Damage, missing_chunks, unreadable_chunks
from zipfstage.store.layout import (
    PROGRESS,
    SCHEMA_VERSION,
    TOKEN_IDS,
    TOKEN_POSITIONS,
    array_at,
    metric_array_name,
    root_info,
    store_path,
)
from zipfstage.store.values import decode, encoding_of


def open_store(out_dir: Path) -> StoreReader:
    """Open `DIR/store.zarr` for reading, or fail with a message that says what to run first."""
    path = store_path(out_dir)
    if not path.exists():
        raise ZipfstageError(f"no store at {path}: run `zipfstage collect --out {out_dir}` first")
    try:
        root = zarr.open_group(path, mode="r", zarr_format=3)
        info = root_info(root)
    except Exception:
        raise ZipfstageError(f"{path} is not a zipfstage store") from None
    if info.get("schema_version") != SCHEMA_VERSION:
        raise ZipfstageError(
            f"{path} has schema version {info.get('schema_version')}; this zipfstage reads "
            f"version {SCHEMA_VERSION}"
        )
    return StoreReader(path, root, info)


class StoreReader:
    """Read-only view of a store: its description, and the committed rows of each array.

    `attributes` is the typed description; `info` the same as the raw dict collect wrote.
    """

    def __init__(self, path: Path, root: zarr.Group, info: dict[str, Any]) -> None:
        self.path = path
        self.root = root
        self.info = info
        self.attributes = RunAttributes.from_dict(info)
        self.plan = self.attributes.plan
        self._positions: np.ndarray | None = None

    @property
    def points(self) -> list[str]:
        """Collection points in depth order (embed first)."""
        return list(self.attributes.points)

    @property
    def metrics(self) -> list[str]:
        """The per-token metrics that fit, plot and report treat one by one (no top-k arrays)."""
        return [m for m in self.attributes.metrics if m not in TOPK_ARRAYS]

    @property
    def attention_points(self) -> dict[str, int]:
        """The attn points (`layer_3.attn`) and their number of heads; {} without --sites attn.
        Their ATTN_METRICS are [N, heads] arrays; they are not among `points`."""
        listing = self.info.get("attention") or {}
        return {str(name): int(heads) for name, heads in (listing.get("points") or {}).items()}

    @property
    def scalar_metrics(self) -> list[str]:
        return [m for m in self.metrics if m != CHANNEL_WISE]

    @property
    def channel_indices(self) -> list[int]:
        return list(self.attributes.channel_indices)

    def point_channels(self, point: str) -> list[int]:
        """The channel_wise indices of one point (its array's "channels"; d_ff sites differ)."""
        try:
            channels = array_at(self.root, metric_array_name(point, CHANNEL_WISE)).attrs["channels"]
        except (KeyError, TypeError):
            return self.channel_indices
        return [int(c) for c in channels]  # type: ignore[union-attr,arg-type]

    @property
    def complete(self) -> bool:
        return self.attributes.complete

    @cached_property
    def committed_counts(self) -> np.ndarray:
        """Rows committed per batch (0 = not committed)."""
        return np.asarray(self._array(PROGRESS)[:])

    @cached_property
    def committed_rows(self) -> np.ndarray:
        """Boolean mask over the array rows that belong to committed batches."""
        counts = self.committed_counts
        n_rows = self._array(TOKEN_IDS).shape[0]
        mask = np.zeros(n_rows, dtype=bool)
        for batch in np.flatnonzero(counts):
            start = self.plan.batch_rows(int(batch)).start
            mask[start : start + int(counts[batch])] = True
        return mask

    @property
    def n_tokens(self) -> int:
        return int(self.committed_rows.sum())

    def _array(self, name: str) -> zarr.Array:
        """An array of the store, or one line naming it when its metadata cannot be read."""
        try:
            return array_at(self.root, name)
        except Exception:
            raise ZipfstageError(
                f"{self.path}/{name} cannot be read (its zarr.json is missing or damaged); "
                f"`zipfstage check --out {self.path.parent}` lists what is damaged"
            ) from None

    def _damaged(self, damage: Damage) -> ZipfstageError:
        return ZipfstageError(
            f"{self.path}/{damage.describe()}: run `zipfstage collect` with the same settings "
            f"to collect it again (`zipfstage check --out {self.path.parent}` lists all damage)"
        )

    def _read(self, name: str) -> np.ndarray:
        """Every committed row of one array, after checking that none of its chunks is gone."""
        array = self._array(name)
        batches = {
            int(b): int(self.committed_counts[b]) for b in np.flatnonzero(self.committed_counts)
        }
        for damage in missing_chunks(self.path, self.root, self.plan, batches, [name]):
            raise self._damaged(damage)
        try:
            data = np.asarray(array[:])
        except Exception:
            for damage in unreadable_chunks(self.root, self.plan, batches, [name]):
                raise self._damaged(damage) from None
            raise ZipfstageError(f"{self.path}/{name} cannot be read") from None
        data = decode(data, encoding_of(array.attrs))  # 16-bit values as float32
        if self.complete:
            return data
        # an interrupted final trim can leave arrays of different lengths; rows past a trimmed
        # length were never committed, so cutting the mask to the array is exact
        return data[self.committed_rows[: data.shape[0]]]

    def metric(self, point: str, metric: str, skip_positions: int = 0) -> np.ndarray:
        """Committed values of one metric: [N] for scalars, [N, k] for channel_wise, [N, heads]
        for an attn point's metrics.

        `skip_positions` drops the tokens at sequence positions below it (position 0 is the
        attention sink; with BOS prepended it is the same token, and so the same value, in every
        sequence).
        """
        self.require(point, metric)
        values = self._read(metric_array_name(point, metric))
        if skip_positions > 0:
            values = values[self.positions() >= skip_positions]
        return values

    def token_ids(self) -> np.ndarray:
        return self._read(TOKEN_IDS)

    def positions(self) -> np.ndarray:
        if self._positions is None:
            self._positions = self._read(TOKEN_POSITIONS)
        return self._positions

    def require(self, point: str, metric: str) -> None:
        if point in self.attention_points:
            if metric not in ATTN_METRICS:
                raise ZipfstageError(
                    f"{point} holds the attention metrics {', '.join(ATTN_METRICS)}, not {metric!r}"
                )
            return
        if point not in self.points:
            raise ZipfstageError(
                f"point {point!r} is not in the store; it has: {', '.join(self.points)}"
            )
        if metric not in self.metrics:
            raise ZipfstageError(
                f"metric {metric!r} is not in the store; it has: {', '.join(self.metrics)}"
            )

    def require_data(self) -> None:
        if self.n_tokens == 0:
            raise ZipfstageError(
                f"the store at {self.path} has no committed data yet: let `zipfstage collect` run"
            )

    def select(self, points: list[str], metrics: list[str]) -> tuple[list[str], list[str]]:
        """Resolve user selections ("all" or names) against what the store holds."""
        chosen_points = self.points if points in ([], ["all"]) else points
        chosen_metrics = self.metrics if metrics in ([], ["all"]) else metrics
        for point in chosen_points:
            for metric in chosen_metrics:
                self.require(point, metric)
        return list(chosen_points), list(chosen_metrics)

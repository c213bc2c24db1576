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
from zipfstage.store.checksums import ChecksumTable
from zipfstage.store.compact import LAYOUT_SHARDED
from zipfstage.store.integrity import (
    METADATA,
    UNREADABLE,
    Damage,
    committed_extent,
    data_arrays,
    decode_damage,
    digest_damage,
    metadata_damage,
    missing_chunks,
    progress_damage,
    repair_advice,
    stored_digests,
    verify_rows,
)
from zipfstage.store.layout import (
    BATCH_DIGEST,
    CHECKSUMS,
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


def open_store(out_dir: Path, verify: bool = True) -> StoreReader:
    """Open `DIR/store.zarr` for reading, or fail with a message that says what to run first.

    `verify` runs the cheap checks (`StoreReader.verify`) before anything is read; `check`,
    which lists damage rather than stopping at the first, opens without them.
    """
    path = store_path(out_dir)
    if not path.exists():
        raise ZipfstageError(f"no store at {path}: run `zipfstage collect --out {out_dir}` first")
    try:
        root = zarr.open_group(path, mode="r", zarr_format=3)
        info = root_info(root)
    except Exception:
        raise ZipfstageError(
            f"{path} is not a readable zipfstage store (its zarr.json is missing or damaged); "
            f"zipfstage cannot repair that: collect again with `zipfstage collect --overwrite "
            f"--out {out_dir}`"
        ) from None
    if info.get("schema_version") != SCHEMA_VERSION:
        raise ZipfstageError(
            f"{path} has schema version {info.get('schema_version')}; this zipfstage reads "
            f"version {SCHEMA_VERSION}"
        )
    reader = StoreReader(path, root, info)
    if verify:
        reader.verify()
    return reader


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
        self._ids: np.ndarray | None = None
        self._table: ChecksumTable | None = None
        self._files_checked: set[str] = set()

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

    def verify(self) -> None:
        """Refuse in one line when the store is damaged where every stage would notice: an
        array's metadata, `progress` and the batch seals, a committed batch's chunk file, the
        token ids and positions (checksums and digests). Each metric is verified when read.
        Costs a file listing and a read of the two token arrays, not of the metrics."""
        names = data_arrays(self.path, self.root)
        for damage in metadata_damage(self.root, [PROGRESS, *names]):
            raise self._damaged(damage)
        for name in names:
            self._require_files(name)
        self.token_ids()
        self.positions()

    @property
    def compacted(self) -> bool:
        return self.attributes.layout == LAYOUT_SHARDED

    @cached_property
    def committed_counts(self) -> np.ndarray:
        """Rows committed per batch (0 = not committed), once `progress` and every committed
        batch's seal are found sound (`progress_damage`)."""
        try:
            counts = np.asarray(self._array(PROGRESS)[:])
        except ZipfstageError:
            raise
        except Exception:  # an unreadable progress chunk
            raise self._damaged(Damage(PROGRESS, 0, UNREADABLE)) from None
        table = self._table = self._read_checksums(counts)  # after progress: `progress_damage`
        try:
            found = progress_damage(self.root, self.plan, self.info, counts, table)
        except Exception:  # an unreadable digest chunk
            found = [Damage(BATCH_DIGEST, 0, UNREADABLE)]
        if found:
            raise self._damaged(found[0])
        return counts

    @property
    def checksums(self) -> ChecksumTable | None:
        """The committed batches' checksums (None in a store collected before checksums)."""
        _ = self.committed_counts
        return self._table

    def _read_checksums(self, counts: np.ndarray) -> ChecksumTable | None:
        try:
            return ChecksumTable.read(self.root, committed_extent(counts))
        except Exception:
            raise self._damaged(Damage(CHECKSUMS, 0, UNREADABLE)) from None

    @cached_property
    def committed_batches(self) -> dict[int, int]:
        counts = self.committed_counts
        return {int(b): int(counts[b]) for b in np.flatnonzero(counts)}

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
            raise self._damaged(Damage(name, 0, METADATA)) from None

    def _require_files(self, name: str) -> None:
        """Refuse when a chunk (or shard) file of a committed batch of `name` is gone; the
        files are listed once per array and reader."""
        if name in self._files_checked:
            return
        batches = self.committed_batches
        for damage in missing_chunks(self.path, self.root, self.plan, batches, [name]):
            raise self._damaged(damage)
        self._files_checked.add(name)

    def _damaged(self, damage: Damage) -> ZipfstageError:
        advice = repair_advice([damage], self.compacted, self.path.parent)
        return ZipfstageError(
            f"{self.path}/{damage.describe()}: {advice} (`zipfstage check --out "
            f"{self.path.parent}` lists all damage)"
        )

    def _read(self, name: str) -> np.ndarray:
        """Every committed row of one array, after checking that none of its chunks is gone
        and that every committed batch matches its checksums."""
        return self.read_rows(name, 0, None)

    def read_rows(
        self, name: str, start: int, stop: int | None, committed_only: bool = True
    ) -> np.ndarray:
        """Rows start..stop of one array (`stop` None: all), verified like `_read`; only the
        committed ones unless `committed_only` is False (the caller masks them)."""
        array = self._array(name)
        stop = array.shape[0] if stop is None else min(stop, array.shape[0])
        rows = self.plan.rows_per_batch
        batches = {
            b: n for b, n in self.committed_batches.items() if start <= b * rows < max(stop, 1)
        }
        self._require_files(name)
        try:
            data = np.asarray(array[start:stop])
        except Exception:
            table = self.checksums
            for damage in decode_damage(self.root, self.plan, batches, [name], table):
                raise self._damaged(damage) from None
            raise self._damaged(Damage(name, min(batches, default=0), UNREADABLE)) from None
        for damage in verify_rows(name, start, data, batches, self.plan, self.checksums):
            raise self._damaged(damage)
        data = decode(data, encoding_of(array.attrs))  # 16-bit values as float32
        if self.complete or not committed_only:
            return data
        # an interrupted final trim can leave arrays of different lengths; rows past a trimmed
        # length were never committed, so cutting the mask to the array is exact
        return data[self.committed_rows[start : start + data.shape[0]]]

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
        """Committed token ids, also checked against each batch's digest."""
        if self._ids is None:
            raw = self.read_rows(TOKEN_IDS, 0, None, committed_only=False)
            batches = self.committed_batches
            digests = stored_digests(self.root, max(batches, default=-1) + 1)
            for damage in digest_damage(0, raw, batches, self.plan, digests):
                raise self._damaged(damage)
            self._ids = raw if self.complete else raw[self.committed_rows[: raw.shape[0]]]
        return self._ids

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

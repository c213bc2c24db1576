"""Fit results: one record per (point, metric) in the store under `fits/`, mirrored in `fits.json`.

A record is a JSON dict whose schema `zipfstage.records` owns. `channel_wise` holds a list of
records, one per sampled channel, each with a "channel" key. Scan curves and bootstrap draws are
arrays beside the record so `plot` can draw diagnostics without refitting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from zipfstage.errors import ZipfstageError
from zipfstage.records import ChannelFits, FitTable, RawRecords, jsonable, parse_records
from zipfstage.store.layout import FITS_GROUP, fit_group_name, fits_json_path, store_path
from zipfstage.store.reader import StoreReader, open_store

FitRecords = RawRecords


def write_fit(
    out_dir: Path,
    point: str,
    metric: str,
    record: dict[str, Any] | list[dict[str, Any]],
    input_hash: str,
    curves: dict[str, np.ndarray] | None = None,
) -> None:
    """Store one (point, metric) result; curves are 1-D arrays such as scan_xmin, scan_ks."""
    root = zarr.open_group(store_path(out_dir), mode="r+", zarr_format=3)
    group = root.require_group(fit_group_name(point, metric))
    curves = curves or {}
    for name, _ in list(group.arrays()):
        if name not in curves:
            del group[name]  # e.g. bootstrap draws of an earlier run that used --bootstrap
    for name, values in curves.items():
        data = np.asarray(values, dtype=np.float64)
        group.create_array(name, data=data, chunks=(max(len(data), 1),), overwrite=True)
    group.attrs.update({"record": jsonable(record), "input_hash": input_hash})


def read_input_hash(out_dir: Path, point: str, metric: str) -> str | None:
    """The hash of the inputs an existing fit used, or None when there is no fit yet."""
    root = zarr.open_group(store_path(out_dir), mode="r", zarr_format=3)
    name = fit_group_name(point, metric)
    if name not in root:
        return None
    return root[name].attrs.get("input_hash")  # type: ignore[return-value]


def read_fit_records(out_dir: Path) -> FitRecords:
    """All stored records as {point: {metric: record or [records]}}; error if `fit` never ran."""
    root = zarr.open_group(store_path(out_dir), mode="r", zarr_format=3)
    fits = root.get(FITS_GROUP)
    if not isinstance(fits, zarr.Group):
        raise ZipfstageError(f"no fits in {out_dir}: run `zipfstage fit --out {out_dir}` first")
    records: FitRecords = {}
    for point, point_group in fits.groups():
        for metric, metric_group in point_group.groups():
            records.setdefault(point, {})[metric] = metric_group.attrs["record"]
    if not records:
        raise ZipfstageError(f"no fits in {out_dir}: run `zipfstage fit --out {out_dir}` first")
    return records


def require_current_fits(out_dir: Path, records: FitRecords, n_tokens: int) -> None:
    """Refuse to draw or report fits made from fewer tokens than the store now holds.

    A fit can run on a store that `collect` is still filling; once collect adds tokens, figures
    would lay old fits over new data without saying so.
    """
    for point, by_metric in records.items():
        for metric, record in by_metric.items():
            first = record[0] if isinstance(record, list) and record else record
            made_from = first.get("store_tokens") if isinstance(first, dict) else None
            if made_from is not None and made_from != n_tokens:
                raise ZipfstageError(
                    f"the fit of {point}/{metric} was made from {made_from:,} tokens but the "
                    f"store now holds {n_tokens:,}: run `zipfstage fit --out {out_dir}` again"
                )


def read_fit_curves(out_dir: Path, point: str, metric: str) -> dict[str, np.ndarray]:
    """Arrays stored beside a record (scan curves, bootstrap draws); empty if none."""
    root = zarr.open_group(store_path(out_dir), mode="r", zarr_format=3)
    name = fit_group_name(point, metric)
    group = root.get(name)
    if not isinstance(group, zarr.Group):
        return {}
    return {key: np.asarray(array[:]) for key, array in group.arrays()}


def write_fits_json(out_dir: Path, records: FitRecords) -> Path:
    """Write the summary atomically (a temp file, then a rename)."""
    path = fits_json_path(out_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(jsonable(records), indent=2, allow_nan=False))
    tmp.replace(path)
    return path


def read_fitted_store(out_dir: Path) -> tuple[StoreReader, FitTable, ChannelFits]:
    """The store and its fits, for the stages that draw or report them.

    Raises `ZipfstageError` when the store is missing or empty, `fit` never ran, or the fits are
    older than the store's data (see `require_current_fits`).
    """
    reader = open_store(out_dir)
    reader.require_data()
    records = read_fit_records(out_dir)
    require_current_fits(out_dir, records, reader.n_tokens)
    table, channels = parse_records(records)
    return reader, table, channels

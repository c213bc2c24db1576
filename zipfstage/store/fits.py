"""Fit results: one record per (point, metric) in the store under `fits/`, mirrored in `fits.json`.

A record is a JSON dict whose schema `zipfstage.records` owns. `channel_wise` holds a list of
records, one per sampled channel, each with a "channel" key. Scan curves and bootstrap draws are
arrays in a subgroup the record names (attribute "curves") so `plot` can draw diagnostics without
refitting; channel fits keep thinned scan curves (`zipfstage.store.curve_thinning`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from zipfstage.errors import ZipfstageError
from zipfstage.records import ChannelFits, FitTable, RawRecords, jsonable, parse_records
from zipfstage.store.attributes import RunAttributes
from zipfstage.store.curve_thinning import chosen_index, thin_indices
from zipfstage.store.layout import FITS_GROUP, fit_group_name, fits_json_path, store_path
from zipfstage.store.reader import StoreReader, open_store
from zipfstage.store.writer import write_error

FitRecords = RawRecords


class _Current:
    """`write_fit(store_id=CURRENT)`: stamp the fit with the store's own generation, unchecked
    (for callers that computed the fit from the store they just opened)."""


CURRENT = _Current()

#: group attribute naming the subgroup that holds a fit's curves
CURVES_ATTR = "curves"
CURVES_PREFIX = "curves_"


def write_fit(
    out_dir: Path,
    point: str,
    metric: str,
    record: dict[str, Any] | list[dict[str, Any]],
    input_hash: str,
    curves: dict[str, np.ndarray] | None = None,
    *,
    thin: bool | None = None,
    store_id: str | _Current | None = CURRENT,
) -> None:
    """Store one (point, metric) result; curves are 1-D arrays such as scan_xmin, scan_ks.

    `store_id` is the generation the fit was computed from: if the store now is another one
    (`collect --overwrite` replaced it), nothing is written and the fit refuses. The record (each
    record of a list) carries it as "store_id".

    Never leaves a mix: the curves go into a fresh subgroup, then one metadata write publishes
    record, hash and that subgroup's name together, then the previous curves go. A kill at any
    point leaves the old fit whole (and its old hash, so a rerun refits) or the new one.
    `thin` (default: for channel fits, whose curves outweigh their metrics) keeps a few hundred
    log-spaced scan points per curve, the chosen xmin exactly.
    """
    root = zarr.open_group(store_path(out_dir), mode="r+", zarr_format=3)
    if isinstance(store_id, _Current):
        store_id = RunAttributes.from_store(root).store_id
    require_generation(out_dir, root, store_id)
    record = _stamped(record, store_id)
    curves = dict(curves or {})
    if thin if thin is not None else isinstance(record, list):
        curves = _thinned(curves, record)
    try:
        group = root.require_group(fit_group_name(point, metric))
        name = _write_curves(group, curves)
        require_generation(out_dir, root, store_id)  # the store may have been replaced meanwhile
        attributes = {"record": jsonable(record), "input_hash": input_hash, CURVES_ATTR: name}
        _publish(group, {**attributes, "store_id": store_id})
        _remove_stale(group, keep=name)
    except OSError as exc:
        raise write_error(f"cannot write the fit of {point}/{metric} into {out_dir}", exc) from None


def _stamped(
    record: dict[str, Any] | list[dict[str, Any]], store_id: str | None
) -> dict[str, Any] | list[dict[str, Any]]:
    if isinstance(record, list):
        return [{**item, "store_id": store_id} for item in record]
    return {**record, "store_id": store_id}


def require_generation(out_dir: Path, root: zarr.Group, store_id: str | None) -> None:
    """Refuse to write a fit into a store other than the one it was computed from."""
    current = RunAttributes.from_store(zarr.open_group(root.store, mode="r", zarr_format=3))
    if not current.is_generation(store_id):
        raise ZipfstageError(
            f"the store in {out_dir} was replaced while fitting (collect --overwrite); its "
            f"fits were not written: run `zipfstage fit --out {out_dir}` again"
        )


def _write_curves(group: zarr.Group, curves: dict[str, np.ndarray]) -> str:
    """Write the arrays under a name no earlier fit used; return the name."""
    name = f"{CURVES_PREFIX}{uuid.uuid4().hex[:12]}"
    target = group.create_group(name)
    for key, values in curves.items():
        data = np.asarray(values, dtype=np.float64)
        # each curve its own dimension: curves differ in length, and xarray needs names
        target.create_array(
            key, data=data, chunks=(max(len(data), 1),), dimension_names=(f"{key}_index",)
        )
    return name


def _publish(group: zarr.Group, attributes: dict[str, Any]) -> None:
    """One write of the group's metadata (atomic on a local store: a temp file, then a rename)."""
    group.attrs.update(attributes)


def _remove_stale(group: zarr.Group, keep: str) -> None:
    """Delete earlier curves: other subgroups, and arrays of the layout before subgroups."""
    for name in [n for n, _ in group.members() if n != keep]:
        del group[name]


def _thinned(
    curves: dict[str, np.ndarray], record: dict[str, Any] | list[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """Scan arrays thinned per channel (segments named by `scan_channel`); others as given."""
    if "scan_xmin" not in curves:
        return curves
    xmins = np.asarray(curves["scan_xmin"], dtype=np.float64)
    ks = np.asarray(curves.get("scan_ks", np.full(xmins.size, np.nan)), dtype=np.float64)
    owner = np.asarray(curves.get("scan_channel", np.zeros(xmins.size)), dtype=np.float64)
    records = record if isinstance(record, list) else [record]
    chosen = {float(r.get("channel", 0)): r.get("xmin") for r in records if isinstance(r, dict)}
    keep: list[np.ndarray] = []
    bounds = np.flatnonzero(np.diff(owner) != 0) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, owner.size], strict=True):
        seg = slice(int(start), int(stop))
        index = chosen_index(xmins[seg], chosen.get(float(owner[start])), ks[seg])
        keep.append(thin_indices(xmins[seg], index) + int(start))
    kept = np.concatenate(keep) if keep else np.arange(0)
    scan = [key for key, v in curves.items() if key.startswith("scan_") and len(v) == xmins.size]
    return {key: (np.asarray(v)[kept] if key in scan else v) for key, v in curves.items()}


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
            if "record" in metric_group.attrs:  # not so only while a first fit is being written
                records.setdefault(point, {})[metric] = metric_group.attrs["record"]
    if not records:
        raise ZipfstageError(f"no fits in {out_dir}: run `zipfstage fit --out {out_dir}` first")
    return records


def require_current_fits(
    out_dir: Path, records: FitRecords, n_tokens: int, attributes: RunAttributes | None = None
) -> None:
    """Refuse to draw or report fits made from another store generation, or from fewer tokens
    than the store now holds.

    A fit can run on a store that `collect` is still filling; once collect adds tokens, figures
    would lay old fits over new data without saying so.
    """
    for point, by_metric in records.items():
        for metric, record in by_metric.items():
            first = record[0] if isinstance(record, list) and record else record
            made_from_id = first.get("store_id") if isinstance(first, dict) else None
            if attributes is not None and not attributes.is_generation(made_from_id):
                raise ZipfstageError(
                    f"fits are from another collection: run `zipfstage fit --out {out_dir}`"
                )
            made_from = first.get("store_tokens") if isinstance(first, dict) else None
            if made_from is not None and made_from != n_tokens:
                raise ZipfstageError(
                    f"the fit of {point}/{metric} was made from {made_from:,} tokens but the "
                    f"store now holds {n_tokens:,}: run `zipfstage fit --out {out_dir}` again"
                )


def read_fit_curves(out_dir: Path, point: str, metric: str) -> dict[str, np.ndarray]:
    """Arrays stored with a record (scan curves, bootstrap draws); empty if none."""
    root = zarr.open_group(store_path(out_dir), mode="r", zarr_format=3)
    name = fit_group_name(point, metric)
    group = root.get(name)
    if not isinstance(group, zarr.Group):
        return {}
    curves_name = group.attrs.get(CURVES_ATTR)
    if isinstance(curves_name, str):  # else a store written before curves moved into subgroups
        found = group.get(curves_name)
        if not isinstance(found, zarr.Group):
            return {}
        group = found
    return {key: np.asarray(array[:]) for key, array in group.arrays()}


def write_fits_json(out_dir: Path, records: FitRecords) -> Path:
    """Write the summary atomically (a temp file, then a rename)."""
    path = fits_json_path(out_dir)
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(jsonable(records), indent=2, allow_nan=False))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(f"cannot write {path}", exc) from None
    return path


def read_fitted_store(out_dir: Path) -> tuple[StoreReader, FitTable, ChannelFits]:
    """The store and its fits, for the stages that draw or report them.

    Raises `ZipfstageError` when the store is missing or empty, `fit` never ran, or the fits are
    older than the store's data (see `require_current_fits`).
    """
    reader = open_store(out_dir)
    reader.require_data()
    records = read_fit_records(out_dir)
    require_current_fits(out_dir, records, reader.n_tokens, reader.attributes)
    table, channels = parse_records(records)
    return reader, table, channels

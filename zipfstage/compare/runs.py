"""One run as compare sees it: validated store description, fit table, places, outlier summary.

Only small things are read here (root attributes, committed-row counts, fit records, outliers.json);
metric arrays are left alone until a CCDF overlay asks for one depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zipfstage.compare.depth import PointPlace, place
from zipfstage.compare.outliers import Outliers, read_outliers
from zipfstage.config import refuse_url
from zipfstage.errors import ZipfstageError
from zipfstage.records import FitTable, parse_records
from zipfstage.store.fits import read_fit_records, require_current_fits
from zipfstage.store.layout import store_path
from zipfstage.store.reader import StoreReader, open_store


@dataclass
class Run:
    """A fitted run ready to compare; `label` is set once every run is loaded."""

    directory: Path
    reader: StoreReader
    table: FitTable
    places: list[PointPlace]
    outliers: Outliers | None
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def model(self) -> dict[str, Any]:
        return dict(self.reader.info.get("model") or {})

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.reader.info.get("data") or {})

    @property
    def model_name(self) -> str:
        return str(self.model.get("name") or "unknown model")

    @property
    def n_layers(self) -> int:
        return int(self.model["n_layers"])

    @property
    def n_tokens(self) -> int:
        return self.reader.n_tokens

    def description(self) -> dict[str, str]:
        """What a label can name, by field (the fields that differ between runs go in labels)."""
        data = self.data
        source = str(data.get("source", "?"))
        if data.get("subset"):
            source += f"/{data['subset']}"
        config = self.reader.info.get("config") or {}
        return {
            "model": self.model_name,
            "revision": str(self.model.get("revision") or "-"),
            "data": source,
            "dtype": str(self.model.get("dtype", "?")),
            "tokens": f"{self.n_tokens:,} tokens",
            "seq_len": f"seq_len {config.get('seq_len', '?')}",
        }


def load_run(run_dir: Path) -> Run:
    """Open and check one run; any problem is one line naming the run (exit 2)."""
    run_dir = Path(run_dir)
    if not store_path(run_dir).exists():
        raise ZipfstageError(f"{run_dir} is not a zipfstage run (no store.zarr)")
    try:
        reader = open_store(run_dir)
        reader.require_data()
        records = read_fit_records(run_dir)
        require_current_fits(run_dir, records, reader.n_tokens)
    except ZipfstageError as exc:
        raise ZipfstageError(f"cannot compare {run_dir}: {exc}") from None
    n_layers = (reader.info.get("model") or {}).get("n_layers")
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ZipfstageError(f"cannot compare {run_dir}: its store does not record n_layers")
    table, _ = parse_records(records)
    places, notes = [], []
    for point in reader.points:
        where = place(point, n_layers)
        if where is None or where.layer >= n_layers:
            notes.append(f"{run_dir}: point {point!r} has no layer of the model; left out")
        else:
            places.append(where)
    outliers, why = read_outliers(run_dir, n_layers)
    if why:
        notes.append(why)
    ids = {str(reader.info.get(k)) for k in ("store_id", "generation", "config_hash")}
    if outliers is not None and outliers.store_id is not None and outliers.store_id not in ids:
        notes.append(f"{run_dir}: outliers.json names store {outliers.store_id!r}; it may be stale")
    return Run(run_dir, reader, table, places, outliers, notes)


def load_runs(run_dirs: list[Path], labels: list[str] | None = None) -> list[Run]:
    """Every run, checked before anything is written, each with a label."""
    if len(run_dirs) < 2:
        raise ZipfstageError("compare needs at least two run directories")
    if labels is not None and len(labels) != len(run_dirs):
        raise ZipfstageError(f"--labels names {len(labels)} runs but {len(run_dirs)} were given")
    for run_dir in run_dirs:
        refuse_url(run_dir, "run")
    runs = [load_run(d) for d in run_dirs]
    refuse_repeats(runs)
    for run, label in zip(runs, labels or default_labels(runs), strict=True):
        run.label = label
    return runs


def refuse_repeats(runs: list[Run]) -> None:
    """A run given twice (the same folder, or copies of one store) compares nothing with itself."""
    seen: dict[object, Path] = {}
    for run in runs:
        store_id = run.reader.attributes.store_id
        keys = [("folder", run.directory.resolve())] + ([("store", store_id)] if store_id else [])
        for key in keys:
            if key in seen:
                how = "is the same folder as" if key[0] == "folder" else "is a copy of the store in"
                raise ZipfstageError(
                    f"{run.directory} {how} {seen[key]}: give each run once (compare needs two "
                    "different runs)"
                )
            seen[key] = run.directory


def default_labels(runs: list[Run]) -> list[str]:
    """The model name plus whatever differs between the runs (data, dtype, tokens, ...)."""
    described = [run.description() for run in runs]
    differing = [
        key for key in described[0] if key != "model" and len({d[key] for d in described}) > 1
    ]
    labels = [" \u00b7 ".join([d["model"], *(d[key] for key in differing)]) for d in described]
    if len(set(labels)) < len(labels):  # same model, same everything: name the folders
        labels = [
            f"{label} ({run.directory.name})" for label, run in zip(labels, runs, strict=True)
        ]
    if len(set(labels)) < len(labels):
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels

"""Names and shapes inside the store, in one place so writer and reader cannot disagree.

```
DIR/store.zarr/
  (root attrs)              "zipfstage": schema version, config and hash, model, data, plan, status
  tokens/ids                int32 [N]       token id of every row (-1 where not written)
  tokens/position           int32 [N]       position of the token inside its sequence
  metrics/<point>/<metric>  float32 [N] or [N, k] (channel_wise), NaN where not written
  progress                  int32 [B]       rows committed by batch b (0 = not committed)
  fits/<point>/<metric>     written by `fit`
```
Batch b always holds the same tokens and fills rows [b * rows_per_batch, ...): one chunk per batch,
so any worker can write any batch without touching another batch's chunk.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import zarr

SCHEMA_VERSION = 1
STORE_NAME = "store.zarr"
ROOT_ATTR = "zipfstage"
PROGRESS = "progress"
TOKEN_IDS = "tokens/ids"
TOKEN_POSITIONS = "tokens/position"
METRICS_GROUP = "metrics"
FITS_GROUP = "fits"
CHANNEL_WISE = "channel_wise"
STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"


def store_path(out_dir: Path) -> Path:
    return Path(out_dir) / STORE_NAME


def metric_array_name(point: str, metric: str) -> str:
    return f"{METRICS_GROUP}/{point}/{metric}"


@dataclass(frozen=True)
class StorePlan:
    """How many rows the store is laid out for; the real count is known when the data ends."""

    batch_size: int
    seq_len: int
    planned_batches: int

    @property
    def rows_per_batch(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def planned_rows(self) -> int:
        return self.planned_batches * self.rows_per_batch

    def batch_rows(self, batch: int) -> slice:
        start = batch * self.rows_per_batch
        return slice(start, start + self.rows_per_batch)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


TOKENIZER_DIR = "tokenizer"
FITS_JSON = "fits.json"


def tokenizer_path(out_dir: Path) -> Path:
    """Where `collect` saves the tokenizer, so `report` can decode tokens without the model."""
    return Path(out_dir) / TOKENIZER_DIR


#: what later stages derive from the store; all of it is stale once the store is replaced
DERIVED_OUTPUTS = (
    TOKENIZER_DIR,
    FITS_JSON,
    "outliers.json",
    "plots",
    "report.html",
    "report.md",
    "report_files",
)


def remove_derived_outputs(out_dir: Path) -> None:
    for name in DERIVED_OUTPUTS:
        path = Path(out_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def fits_json_path(out_dir: Path) -> Path:
    return Path(out_dir) / FITS_JSON


def fit_group_name(point: str, metric: str) -> str:
    return f"{FITS_GROUP}/{point}/{metric}"


def root_info(root: zarr.Group) -> dict[str, Any]:
    """The store's description (root attribute "zipfstage") as a plain, mutable dict."""
    return dict(cast(dict[str, Any], root.attrs[ROOT_ATTR]))


def array_at(group: zarr.Group, name: str) -> zarr.Array:
    """An array by path, typed as one (a group there is a corrupt store)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name} is not an array")
    return node

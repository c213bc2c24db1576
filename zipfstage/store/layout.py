"""Every name in a run folder and inside its store, in one place so no two modules disagree.

```
DIR/store.zarr/             the store (below); everything else in DIR is derived from it:
DIR/tokenizer/              the tokenizer `collect` saved, so `report` decodes without the model
DIR/fits.json               every fit record (`zipfstage.records`), mirrored from the store
DIR/plots/                  `plot`'s figures
DIR/report.html, report.md  `report`, with report.md's images in DIR/report_files/
DIR/outliers.json           the outlier-channel analysis (`zipfstage.outliers`)
DIR/ablate.json             `ablate`'s interventions (needs the model; `zipfstage.ablate`)
DIR/compare/                reserved for comparisons with other runs (not derived: kept)

DIR/store.zarr/
  (root attrs)              "zipfstage": schema version, config and hash, model, data, plan, status,
                            store_id (a fresh id per created store: its generation)
  tokens/ids                int32 [N]       token id of every row (-1 where not written)
  tokens/position           int32 [N]       position of the token inside its sequence
  metrics/<point>/<metric>  float32 [N] or [N, k] (channel_wise); rows of uncommitted batches are
                            undefined (zeros in a chunk made sparse, NaN with no chunk at all);
                            topk_abs / topk_channel / topk_sign [N, k] (float32, int32, int8)
  progress                  int32 [B]       rows committed by batch b (0 = not committed); chunks
                                            of many batches, each entry written in place
  batch_digest              int64 [B]       hash of batch b's token ids, written before its commit
                                            (0 = none: a store written before digests existed)
  batch_checksum            uint32 [B, A+1] CRC32C of batch b's rows in each data array (columns:
                                            its "arrays" attribute) and the batch's seal
                                            (`zipfstage.store.checksums`), written before its commit
  fits/<point>/<metric>     written by `fit`
```
Batch b always holds the same tokens and fills rows [b * rows_per_batch, ...). While collect runs,
a chunk holds about 1 MB of whole batches and each batch writes its own rows in place, so any
worker can write any batch without touching another batch's bytes; a finished store is compacted
into a few shards per array (`zipfstage.store.compact`).
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
BATCH_DIGEST = "batch_digest"
CHECKSUMS = "batch_checksum"
#: a root attribute for plain zarr / xarray readers: what uncommitted rows hold
UNCOMMITTED_ATTR = "uncommitted_rows"
UNCOMMITTED_NOTE = (
    "rows of batches whose `progress` entry is 0 hold no data (they read 0, NaN or -1) until "
    "collect commits them; mask with (np.arange(rows_per_batch) < progress[:, None]).ravel()"
)
TOKEN_IDS = "tokens/ids"
TOKEN_POSITIONS = "tokens/position"
METRICS_GROUP = "metrics"
FITS_GROUP = "fits"
STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"


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
PLOTS_DIR = "plots"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
REPORT_ASSETS = "report_files"
OUTLIERS_JSON = "outliers.json"
ABLATE_JSON = "ablate.json"
ABLATE_PLOT = "ablate"
COMPARE_DIR = "compare"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder; every stage finds its inputs and outputs here.

    `report_assets` holds the images report.md links to by the folder's name, REPORT_ASSETS.
    """

    root: Path
    store: Path
    tokenizer: Path
    fits_json: Path
    plots: Path
    report_html: Path
    report_markdown: Path
    report_assets: Path
    outliers_json: Path
    compare: Path
    ablate_json: Path

    @property
    def ablate_plot(self) -> Path:
        """The stem of `ablate`'s figure (DIR/plots/ablate.png, .pdf, .svg)."""
        return self.plots / ABLATE_PLOT

    @classmethod
    def at(cls, root: Path) -> RunFolder:
        root = Path(root)
        names = (
            *(STORE_NAME, TOKENIZER_DIR, FITS_JSON, PLOTS_DIR),
            *(REPORT_HTML, REPORT_MARKDOWN, REPORT_ASSETS, OUTLIERS_JSON, COMPARE_DIR),
            ABLATE_JSON,
        )
        return cls(root, *(root / name for name in names))

    def derived(self) -> tuple[Path, ...]:
        """What later stages derive from the store: all stale once the store is replaced."""
        return (
            self.tokenizer,
            self.fits_json,
            self.plots,
            self.report_html,
            self.report_markdown,
            self.report_assets,
            self.outliers_json,
            self.ablate_json,
        )


def store_path(out_dir: Path) -> Path:
    return RunFolder.at(out_dir).store


def tokenizer_path(out_dir: Path) -> Path:
    """Where `collect` saves the tokenizer, so `report` can decode tokens without the model."""
    return RunFolder.at(out_dir).tokenizer


def fits_json_path(out_dir: Path) -> Path:
    return RunFolder.at(out_dir).fits_json


def remove_derived_outputs(out_dir: Path) -> None:
    for path in RunFolder.at(out_dir).derived():
        remove_path(path)


def remove_path(path: Path) -> None:
    """Remove a file or folder; a symbolic link is unlinked, never what it points to."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


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

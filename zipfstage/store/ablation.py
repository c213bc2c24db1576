"""ablate.json: written by `ablate` (which needs the model), read by `report` and `compare` (which
never load it). Kept here, below both, so reading an ablation imports neither torch nor matplotlib.

The file is written whole under a temporary name and renamed into place, so an interrupted
`ablate` leaves the previous result or none, never half of one. It carries the store_id and token
count it was made from; a reader treats an ablation of another store state as missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zipfstage.errors import ZipfstageError
from zipfstage.records import jsonable
from zipfstage.store.derived import read_derived
from zipfstage.store.layout import RunFolder

ABLATE_SCHEMA = 1


def write_ablation(run_dir: Path, data: dict[str, Any]) -> Path:
    """Write DIR/ablate.json atomically (temporary file, then rename)."""
    path = RunFolder.at(run_dir).ablate_json
    text = json.dumps(jsonable({"schema": ABLATE_SCHEMA, **data}), indent=2, allow_nan=False)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ZipfstageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def read_ablation(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(ablate.json, None) when current; (None, why) when unreadable or from another store state;
    (None, None) when there is none."""
    path = RunFolder.at(run_dir).ablate_json
    return read_derived(run_dir, path, "interventions", "an ablation result", "zipfstage ablate")

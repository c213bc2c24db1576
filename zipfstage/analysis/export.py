"""`zipfstage export`: the fit table as CSV (standard library) or Parquet (pyarrow)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Literal

from zipfstage.analysis.fit_table import LEADING_COLUMNS, fit_rows
from zipfstage.errors import ZipfstageError
from zipfstage.store.writer import write_error

ExportFormat = Literal["csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet")


def export_fits(run_dir: Path, fmt: ExportFormat, path: Path | None = None) -> tuple[Path, int]:
    """Write the run's fit table to `path` (default RUN/fits.<fmt>); (path, rows written).

    Written to a temporary file and renamed, so an interrupted export leaves no half file.
    """
    if fmt not in FORMATS:
        raise ZipfstageError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    rows = fit_rows(Path(run_dir))
    target = Path(path) if path is not None else Path(run_dir) / f"fits.{fmt}"
    if target.is_dir():
        raise ZipfstageError(f"{target} is a directory; give a file name (e.g. fits.{fmt})")
    columns = _columns(rows)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        if fmt == "csv":
            _write_csv(tmp, rows, columns)
        else:
            _write_parquet(tmp, rows, columns)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(f"cannot write {target}", exc) from None
    return target, len(rows)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """The leading columns, then every other key in first-seen order."""
    seen = dict.fromkeys(LEADING_COLUMNS)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ZipfstageError(
            "Parquet export needs pyarrow: pip install 'zipfstage[analysis]' (or use --format csv)"
        ) from None
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    pq.write_table(table, path)

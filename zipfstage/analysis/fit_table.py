"""The fit table: one flat row per (point, metric[, channel]) with estimates and verdicts.

The same rows back `Run.fits` (a pandas DataFrame) and `zipfstage export`, so a notebook and a
CSV file hold identical numbers. Columns a record gains later (new fit-record keys) are carried
through as they are, so the table never hides what `fit` wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zipfstage.point_names import block_order, parse_point
from zipfstage.records import ALTERNATIVES, FitRecord, RawRecords, parse_records
from zipfstage.report.verdict import alternatives_verdict, clauset_verdict
from zipfstage.store.fits import read_fit_records

#: the leading columns, in the order a reader scans them; every other record key follows
LEADING_COLUMNS = (
    "point",
    "layer",
    "site",
    "metric",
    "channel",
    "status",
    "reason",
    "alpha",
    "alpha_binned",
    "alpha_ci_low",
    "alpha_ci_high",
    "ci_excludes_alpha",
    "xmin",
    "xmin_ci_low",
    "xmin_ci_high",
    "n_tail",
    "n",
    "ks_distance",
    "ks_sup",
    "p_value",
    "n_failed",
    "verdict",
    "verdict_text",
    "alternatives_verdict",
    "alternatives_text",
)


def fit_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Every stored fit of a run as a flat row (raises ZipfstageError when fit never ran)."""
    return rows_from_records(read_fit_records(Path(run_dir)))


def rows_from_records(records: RawRecords) -> list[dict[str, Any]]:
    scalar, channels = parse_records(records)
    fits = [fit for by_metric in scalar.values() for fit in by_metric.values()]
    fits += [fit for per_point in channels.values() for fit in per_point]
    raw = {(f.point, f.metric, f.channel): _raw_record(records, f) for f in fits}
    rows = [_row(fit, raw[(fit.point, fit.metric, fit.channel)]) for fit in fits]
    return sorted(rows, key=_order)


def _raw_record(records: RawRecords, fit: FitRecord) -> dict[str, Any]:
    stored = records[fit.point][fit.metric]
    if isinstance(stored, list):
        return next((r for r in stored if r.get("channel") == fit.channel), {})
    return stored if isinstance(stored, dict) else {}


def _row(fit: FitRecord, raw: dict[str, Any]) -> dict[str, Any]:
    layer, site = parse_point(fit.point) or (None, None)
    verdict, alternatives = clauset_verdict(fit), alternatives_verdict(fit)
    alpha_ci = fit.alpha_ci or (None, None)
    xmin_ci = fit.xmin_ci or (None, None)
    row: dict[str, Any] = {
        "point": fit.point,
        "layer": layer,
        "site": site,
        "metric": fit.metric,
        "channel": fit.channel,
        "status": fit.status,
        "reason": fit.reason,
        "alpha": fit.alpha,
        "alpha_binned": fit.alpha_binned,
        "alpha_ci_low": alpha_ci[0],
        "alpha_ci_high": alpha_ci[1],
        "ci_excludes_alpha": fit.ci_excludes_alpha,
        "xmin": fit.xmin,
        "xmin_ci_low": xmin_ci[0],
        "xmin_ci_high": xmin_ci[1],
        "n_tail": fit.n_tail,
        "n": fit.n,
        "ks_distance": fit.ks_distance,
        "ks_sup": fit.ks_sup,
        "p_value": fit.p_value,
        "n_failed": fit.n_failed,
        "verdict": verdict.kind,
        "verdict_text": verdict.text,
        "alternatives_verdict": alternatives.kind,
        "alternatives_text": alternatives.text,
    }
    for name in ALTERNATIVES:
        comparison = fit.comparisons.get(name)
        row[f"R_{name}"] = comparison.R if comparison else None
        row[f"p_{name}"] = comparison.p if comparison else None
    row["flags"] = ",".join(fit.flags)
    for key, value in raw.items():  # keys added to the record later, scalars only
        if key not in row and key not in _NESTED and not isinstance(value, dict | list):
            row[key] = value
    return row


#: record keys already flattened above (or too nested for one cell)
_NESTED = frozenset({"alpha_ci", "xmin_ci", "comparisons", "flags"})


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    channel = row["channel"] if row["channel"] is not None else -1
    return (*block_order(row["point"]), row["metric"], channel)

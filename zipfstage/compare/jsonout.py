"""compare.json: the comparison as data (every number the tables and figures show)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zipfstage.compare.content import CompareContent
from zipfstage.compare.figures import AlphaPoint
from zipfstage.compare.tables import PaperRow

SCHEMA = 1


def to_json(content: CompareContent, out_dir: Path) -> str:
    runs = content.runs
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "generated": content.generated,
        "runs": [
            {
                "label": run.label,
                "directory": str(run.directory),
                "model": run.model,
                "data": run.data,
                "n_tokens": run.n_tokens,
                "n_layers": run.n_layers,
                "points": [
                    {"point": p.point, "layer": p.layer, "site": p.site, "depth": p.depth}
                    for p in run.places
                ],
                "outliers": run.outliers is not None,
            }
            for run in runs
        ],
        "metrics": content.metrics,
        "alpha": {
            metric: {run.label: [_alpha(p) for p in per_run[i]] for i, run in enumerate(runs)}
            for metric, per_run in content.alpha.items()
        },
        "verdicts": {
            run.label: {
                metric: {
                    "plausible": cell.plausible,
                    "ruled_out": cell.ruled_out,
                    "untested": cell.untested,
                    "failed": cell.failed,
                    "share": cell.share,
                }
                for metric, cell in zip(content.metrics, content.verdicts[i], strict=True)
            }
            for i, run in enumerate(runs)
        },
        "massive": [_paper(row) for row in content.paper],
        "ccdf_overlay_points": {
            metric: {
                which: dict(zip([r.label for r in runs], used, strict=True))
                for which, used in by_depth.items()
            }
            for metric, by_depth in content.overlay_points.items()
        },
        "figures": [
            str(path.relative_to(out_dir)) for figure in content.figures for path in figure.files
        ],
        "notes": content.notes,
    }
    return json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n"


def _alpha(point: AlphaPoint) -> dict[str, Any]:
    fit = point.fit
    return {
        "point": point.place.point,
        "layer": point.place.layer,
        "site": point.place.site,
        "depth": point.place.depth,
        "status": fit.status,
        "alpha": fit.alpha if fit.ok else None,
        "alpha_ci": list(fit.alpha_ci) if fit.alpha_ci else None,
        "alpha_binned": fit.alpha_binned if fit.ok else None,
        "xmin": fit.xmin,
        "p_value": fit.p_value,
        "verdict": point.verdict,
    }


def _paper(row: PaperRow) -> dict[str, Any]:
    peak = row.peak
    return {
        "label": row.label,
        "family": row.family,
        "model": row.model,
        "parameters": row.parameters,
        "layers": row.layers,
        "peak_point": peak.point,
        "peak_layer": peak.layer,
        "peak_site": peak.site,
        "peak_depth": peak.depth,
        "top": list(peak.top[:3]),
        "median": peak.median,
        "ratio": peak.ratio,
        "criterion": peak.criterion,
    }

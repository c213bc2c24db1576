"""The numbers compare lays out: per-run alpha series, the verdict shares, the massive table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from zipfstage.compare.figures import AlphaPoint
from zipfstage.compare.outliers import Massive
from zipfstage.compare.runs import Run
from zipfstage.errors import ZipfstageError
from zipfstage.records import lookup
from zipfstage.report.verdict import clauset_verdict

_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([BM])(?![a-zA-Z])", re.IGNORECASE)


def choose_metrics(runs: list[Run], requested: list[str] | None) -> list[str]:
    """The requested scalar metrics (each in every run), or those every run shares."""
    if requested and requested != ["all"]:
        for run in runs:
            missing = [m for m in requested if m not in run.reader.scalar_metrics]
            if missing:
                raise ZipfstageError(
                    f"metric {missing[0]!r} is not a scalar metric of {run.directory}; it has: "
                    + ", ".join(run.reader.scalar_metrics)
                )
        return list(requested)
    shared = [m for m in runs[0].reader.scalar_metrics if all(m in r.reader.metrics for r in runs)]
    if not shared:
        raise ZipfstageError("the runs share no scalar metric to compare")
    return shared


def alpha_points(run: Run, metric: str) -> list[AlphaPoint]:
    """Every placed point's fit of one metric with Clauset's verdict kind, shallow to deep."""
    points = []
    for where in sorted(run.places, key=lambda p: (p.depth, p.layer)):
        fit = lookup(run.table, where.point, metric)
        points.append(AlphaPoint(where, fit, clauset_verdict(fit).kind))
    return points


@dataclass(frozen=True)
class VerdictCell:
    """How a run's points fare on one metric under Clauset's rule."""

    plausible: int
    ruled_out: int
    untested: int
    failed: int

    @property
    def tested(self) -> int:
        return self.plausible + self.ruled_out

    @property
    def share(self) -> float | None:
        """Plausible among the points a bootstrap tested; None when none was tested."""
        return self.plausible / self.tested if self.tested else None

    @property
    def text(self) -> str:
        if not self.tested:
            return "not tested" if self.untested else "no fits"
        return f"{100 * (self.share or 0):.0f}% ({self.plausible}/{self.tested})"


def verdict_cell(points: list[AlphaPoint]) -> VerdictCell:
    kinds = [p.verdict for p in points]
    return VerdictCell(
        plausible=kinds.count("plausible"),
        ruled_out=kinds.count("ruled-out"),
        untested=kinds.count("untested"),
        failed=sum(k not in ("plausible", "ruled-out", "untested") for k in kinds),
    )


@dataclass(frozen=True)
class PaperRow:
    """One run in the massive-activation papers' table: where its largest |h| peaks."""

    label: str
    family: str
    model: str
    parameters: str
    layers: int
    peak: Massive

    @property
    def peak_layer(self) -> str:
        where = "embed" if self.peak.layer < 0 else str(self.peak.layer)
        if self.peak.site not in ("resid_post", "embed"):
            where += f" ({self.peak.site})"
        return where


def paper_row(run: Run) -> PaperRow | None:
    if run.outliers is None or not run.outliers.points:
        return None
    model = run.model
    return PaperRow(
        label=run.label,
        family=str(model.get("model_type") or model.get("architecture") or "\u2014"),
        model=run.model_name,
        parameters=parameters(model),
        layers=run.n_layers,
        peak=max(run.outliers.points, key=lambda m: m.top[0]),
    )


def parameters(model: dict[str, object]) -> str:
    """The parameter count the store records, else the size in the model's name (0.6B, 135M)."""
    count = model.get("n_parameters")
    if isinstance(count, int) and count > 0:
        return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
    match = _SIZE.search(str(model.get("name") or "").rsplit("/", 1)[-1])
    return f"{match.group(1)}{match.group(2).upper()}" if match else "\u2014"

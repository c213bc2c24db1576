"""Everything the comparison says, gathered once; the writers only lay it out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from zipfstage.compare.figures import AlphaPoint
from zipfstage.compare.runs import Run
from zipfstage.compare.tables import (
    PaperRow,
    VerdictCell,
    alpha_points,
    choose_metrics,
    paper_row,
    verdict_cell,
)
from zipfstage.report.figures import ReportFigure

#: the relative depths the CCDF overlays are drawn at
OVERLAY_DEPTHS = {"first": 0.0, "middle": 0.5, "last": 1.0}


@dataclass(frozen=True)
class SavedFigure:
    """A figure written under plots/ (`relative` without extension) and embedded in the HTML."""

    relative: str
    files: list[Path]
    embedded: ReportFigure


@dataclass
class CompareContent:
    generated: str
    runs: list[Run]
    metrics: list[str]
    alpha: dict[str, list[list[AlphaPoint]]]
    verdicts: list[list[VerdictCell]]
    paper: list[PaperRow]
    overlay_points: dict[str, dict[str, list[str | None]]] = field(default_factory=dict)
    figures: list[SavedFigure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"zipfstage compare \u00b7 {len(self.runs)} runs"

    def section(self, prefix: str) -> list[SavedFigure]:
        return [f for f in self.figures if f.relative.startswith(prefix)]


def gather(runs: list[Run], metrics: list[str] | None) -> CompareContent:
    """Tables from fit records and outlier summaries only; no metric array is read here."""
    chosen = choose_metrics(runs, metrics)
    alpha = {m: [alpha_points(run, m) for run in runs] for m in chosen}
    verdicts = [[verdict_cell(alpha[m][i]) for m in chosen] for i in range(len(runs))]
    paper = [row for run in runs if (row := paper_row(run)) is not None]
    notes = [note for run in runs for note in run.notes]
    without = [run.label for run in runs if run.outliers is None]
    if without and len(without) < len(runs):
        notes.append("no outlier analysis (outliers.json) for: " + ", ".join(without))
    return CompareContent(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        runs=runs,
        metrics=chosen,
        alpha=alpha,
        verdicts=verdicts,
        paper=paper,
        notes=notes,
    )

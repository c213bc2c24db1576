"""Everything the report says, gathered once from the store and fits; html.py and markdown.py
only lay it out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zipfstage.config import ReportSettings
from zipfstage.errors import ZipfstageError
from zipfstage.formatting import DASH
from zipfstage.outliers.analysis import read_outliers
from zipfstage.plotting.jobs import RunData
from zipfstage.records import FitRecord, FitTable, lookup
from zipfstage.report.figures import ReportFigure, report_figures
from zipfstage.report.interventions_section import ablation_figures
from zipfstage.report.outliers_section import outlier_figures
from zipfstage.report.summary import Finding, summarize
from zipfstage.report.tokens import PointTail, tail_tokens
from zipfstage.report.verdict import Verdict, alternatives_verdict, clauset_verdict
from zipfstage.stage import Progress
from zipfstage.store.ablation import read_ablation
from zipfstage.store.layout import RunFolder
from zipfstage.store.reader import StoreReader
from zipfstage.store.tokenizer import load_decoder


@dataclass(frozen=True)
class FitRow:
    depth: int
    fit: FitRecord
    verdict: Verdict
    alternatives: Verdict


@dataclass
class ReportContent:
    title: str
    generated: str
    run: list[tuple[str, str]]
    rows: list[FitRow]
    channel_rows: list[FitRow]
    figures: list[ReportFigure]
    tail_metric: str
    tails: list[PointTail]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: outliers.json when current, else (None, why not): see zipfstage.outliers.read_outliers
    outliers: tuple[dict[str, Any] | None, str | None] = (None, None)
    #: ablate.json when current, else (None, why not): see zipfstage.store.ablation
    ablation: tuple[dict[str, Any] | None, str | None] = (None, None)

    def section(self, name: str) -> list[ReportFigure]:
        return [f for f in self.figures if f.section == name]


def gather(
    out_dir: Path,
    top_tokens: int,
    tail_metric: str,
    *,
    workers: int = 0,
    embed_mb: float = ReportSettings.model_fields["embed_mb"].default,
    progress: Progress | None = None,
) -> ReportContent:
    """Read the store and fits (never the model) into a ReportContent; the figures are drawn
    into report_files/ (`workers` processes, 0 = one per core)."""
    data = RunData.load(out_dir)
    reader, table, channels = data.reader, data.table, data.channels
    notes = []
    metric = choose_tail_metric(tail_metric, reader.scalar_metrics)
    if metric != tail_metric:
        notes.append(f"tail metric {tail_metric!r} is not in the store; showing {metric!r}")
    decoder = load_decoder(out_dir)
    if decoder is None and top_tokens > 0:
        notes.append("no tokenizer saved with this store: tokens are shown by id")
    outliers = read_outliers(out_dir)
    ablation = read_ablation(out_dir)
    rows = fit_rows(reader.points, reader.scalar_metrics, table)
    tails = tail_tokens(reader, metric, top_tokens, decoder)
    findings = summarize([row.fit for row in rows], tails, metric)
    assets = RunFolder.at(out_dir).report_assets
    named = {f.figure for f in findings if f.figure}
    drawn, note = report_figures(data, assets, named, embed_mb, workers, progress)
    figures = drawn + outlier_figures(outliers[0]) + ablation_figures(ablation[0])
    return ReportContent(
        title=f"zipfstage report \u00b7 {reader.attributes.model_name}",
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        run=run_description(reader),
        rows=rows,
        channel_rows=[
            _row(depth, fit)
            for depth, point in enumerate(reader.points)
            for fit in channels.get(point, [])
        ],
        figures=figures,
        tail_metric=metric,
        tails=tails,
        findings=findings,
        notes=notes + ([note] if note else []),
        outliers=outliers,
        ablation=ablation,
    )


def choose_tail_metric(requested: str, metrics: list[str]) -> str:
    """The requested metric; the default falls back quietly, any other unknown name is an error."""
    if requested in metrics:
        return requested
    if requested == ReportSettings.model_fields["tail_metric"].default and metrics:
        return metrics[0]
    raise ZipfstageError(
        f"--tail-metric {requested!r} is not in the store; it has: {', '.join(metrics)}"
    )


def fit_rows(points: list[str], metrics: list[str], table: FitTable) -> list[FitRow]:
    return [
        _row(depth, lookup(table, point, metric))
        for depth, point in enumerate(points)
        for metric in metrics
    ]


def _row(depth: int, fit: FitRecord) -> FitRow:
    return FitRow(depth, fit, clauset_verdict(fit), alternatives_verdict(fit))


def run_description(reader: StoreReader) -> list[tuple[str, str]]:
    """The run, as label/value pairs: model, data, tokens, points, metrics, timing, versions."""
    info = reader.attributes
    model, data, layers = info.model, info.data, info.point_layers
    points = ", ".join(
        f"{p} (layer {layers[p]})" if isinstance(layers.get(p), int) and layers[p] >= 0 else p
        for p in reader.points
    )
    described = ", ".join(f"{k}={v}" for k, v in data.items() if k != "source" and v is not None)
    tokens = f"{reader.n_tokens:,}" + ("" if reader.complete else " (collect still running)")
    channels = str(len(reader.channel_indices)) if reader.channel_indices else DASH
    return [
        ("model", str(model.get("name", DASH))),
        ("revision", str(model.get("revision") or DASH)),
        ("dtype", str(model.get("dtype", DASH))),
        ("architecture", _join(model, ("architecture", "n_layers", "hidden_size"))),
        ("data", str(data.get("source", DASH)) + (f" ({described})" if described else "")),
        ("tokens", tokens),
        ("points", points),
        ("metrics", ", ".join(reader.metrics)),
        ("channels sampled", channels),
        ("collect time", _duration(info.collect_seconds)),
        ("config hash", str(info.config_hash or DASH)),
        ("package versions", ", ".join(f"{k} {v}" for k, v in info.versions.items()) or DASH),
    ]


def _join(model: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {model[k]}" if k != "architecture" else str(model[k])
        for k in keys
        if model.get(k) is not None
    ]
    return ", ".join(parts) or DASH


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or not np.isfinite(seconds):
        return DASH
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"

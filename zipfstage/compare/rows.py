"""The comparison's tables as plain text cells, shared by the HTML and Markdown writers.

Cells hold raw (unescaped) text: model names, labels and data sources come from the stores and
are untrusted, so each writer escapes them for its own format.
"""

from __future__ import annotations

from typing import Any

from zipfstage.compare.content import CompareContent
from zipfstage.formatting import fmt_number
from zipfstage.store.ablation import read_ablation

Table = tuple[list[str], list[list[str]]]
DASH = "\u2014"

EXPLAIN_VERDICTS = (
    "Each cell: the share of the run's points whose power law Clauset's bootstrap test finds "
    "plausible (p \u2265 0.1), among the points it tested. 'not tested' means `zipfstage fit` "
    "ran without --bootstrap, so no p-value exists."
)
EXPLAIN_DEPTH = (
    "Points are placed by relative depth: layer index / (n_layers \u2212 1), with the embedding "
    "output at 0, so models of different depth share one axis. Sub-layer sites are compared site "
    "with site, each in its own panel."
)
EXPLAIN_PAPER = (
    "Per run, the point whose largest |activation| is the largest (from the outlier analysis): "
    "its top-1..3 values, the median |activation| over every token and channel, their ratio, and "
    "whether it meets Sun et al.'s criterion for a massive activation (top-1 > 100 and at least "
    "1000 times the median)."
)


def runs_table(content: CompareContent) -> Table:
    head = ["label", "model", "data", "dtype", "tokens", "layers", "points", "directory"]
    rows = []
    for run in content.runs:
        described = run.description()
        points = ", ".join(p.point for p in run.places)
        rows.append(
            [
                run.label,
                described["model"],
                described["data"],
                described["dtype"],
                f"{run.n_tokens:,}",
                str(run.n_layers),
                points,
                str(run.directory),
            ]
        )
    ablations = [read_ablation(run.directory)[0] for run in content.runs]
    if any(ablations):  # only when a run has `zipfstage ablate`'s result
        head.append(ABLATE_COLUMN)
        for row, ablation in zip(rows, ablations, strict=True):
            row.append(ablate_cell(ablation))
    return head, rows


ABLATE_COLUMN = "massive zeroed / set to mean (\u00d7 baseline perplexity)"


def ablate_cell(ablation: dict[str, Any] | None) -> str:
    """The perplexity ratios of ablate's massive zero and mean rows, where the run has them."""
    if not ablation:
        return DASH
    ratios = {r.get("name"): r.get("ratio") for r in ablation.get("interventions") or []}
    zero, mean = ratios.get("massive zero"), ratios.get("massive mean")
    if zero is None and mean is None:
        return "no massive activation"
    return f"{fmt_number(zero) if zero else DASH} / {fmt_number(mean) if mean else DASH}"


def verdict_table(content: CompareContent) -> Table:
    head = ["run", *content.metrics]
    rows = [
        [run.label, *(cell.text for cell in content.verdicts[i])]
        for i, run in enumerate(content.runs)
    ]
    return head, rows


def paper_table(content: CompareContent) -> Table:
    head = ["family", "model", "parameters", "layers", "layer of peak", "top-1", "top-2", "top-3"]
    head += ["median", "ratio", "Sun criterion"]
    rows = []
    for row in content.paper:
        top = [fmt_number(v, 4) for v in row.peak.top[:3]]
        top += [DASH] * (3 - len(top))
        criterion = {True: "yes", False: "no", None: DASH}[row.peak.criterion]
        rows.append(
            [
                row.family,
                row.label if row.label != row.model else row.model,
                row.parameters,
                str(row.layers),
                row.peak_layer,
                *top,
                fmt_number(row.peak.median, 3),
                fmt_number(row.peak.ratio, 3),
                criterion,
            ]
        )
    return head, rows

"""The report's "Interventions" section, in HTML and Markdown, from ablate.json (never the model).

One table: each intervention's perplexity and its ratio to the baseline, its random controls'
mean ratio and spread, and the massive value at the next and the last layer (does the model
rebuild what was removed?), with ablate's figure beside it.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from zipfstage.formatting import fmt_number
from zipfstage.plotting import style
from zipfstage.plotting.ablate import ablate_figure
from zipfstage.report.escape import markdown_text
from zipfstage.report.figures import REPORT_DPI, ReportFigure

SECTION = "interventions"
TITLE = "Interventions"
HEADERS = [
    "intervention",
    "target",
    "mode",
    "tokens",
    "perplexity",
    "\u00d7 baseline",
    "random controls (\u00d7 baseline)",
    "massive |h| next layer / last",
]
INTRO = (
    "Does the tail matter? Each row edits the channels the outlier analysis names, on text "
    "collect did not use, and compares the next-token perplexity with the baseline (the same "
    "batches, nothing edited). zero sets the channel to 0; mean to its mean over the edited tokens "
    "in the collected data (Sun et al.'s set-to-mean); typical to its mean over the other tokens; "
    "clamp into a quantile of |h|. Random controls edit as many channels the analysis does not "
    "name, at the same layers and tokens, in the same mode."
)
MISSING = "No interventions: run `zipfstage ablate --out DIR` (it needs the model)."


def ablation_figures(data: dict[str, Any] | None) -> list[ReportFigure]:
    if not data:
        return []
    png = style.png_bytes(ablate_figure(data), REPORT_DPI)
    return [ReportFigure(SECTION, "ablate", "Perplexity ratio by intervention", png)]


def rows(data: dict[str, Any]) -> list[list[str]]:
    """The table as plain strings (renderers escape); controls are summarised, not listed."""
    shown = [r for r in data.get("interventions") or [] if r.get("control_of") is None]
    return [
        [
            str(r.get("name")),
            str(r.get("target")),
            str(r.get("mode") or "\u2014"),
            str(r.get("tokens") or "\u2014"),
            fmt_number(r.get("perplexity")),
            fmt_number(r.get("ratio")),
            _controls(r.get("controls")),
            _massive(r.get("massive_after")),
        ]
        for r in shown
    ]


def _controls(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "\u2014"
    return (
        f"{fmt_number(summary['ratio_mean'])} \u00b1 {fmt_number(summary['ratio_std'])} "
        f"({fmt_number(summary['ratio_min'])}\u2013{fmt_number(summary['ratio_max'])}, "
        f"n = {summary['n']})"
    )


def _massive(after: dict[str, Any] | None) -> str:
    if not after or not after.get("max_abs"):
        return "\u2014"
    values = [max(layer) for layer in after["max_abs"]]
    following = values[1] if len(values) > 1 else values[0]
    return f"{fmt_number(following)} / {fmt_number(values[-1])}"


def summary(data: dict[str, Any]) -> str:
    evaluation = data.get("eval") or {}
    massive = data.get("massive")
    where = (
        f"first massive layer {massive['layer']}, channel(s) "
        f"{', '.join(str(c) for c in massive['channels'])}"
        if massive
        else "no massive activation found"
    )
    return (
        f"{evaluation.get('tokens', 0):,} eval tokens of {evaluation.get('source')} "
        f"(after the {evaluation.get('skipped_tokens', 0):,} collect used); {where}."
    )


def interventions_html(
    data: dict[str, Any] | None, note: str | None, figures: list[ReportFigure]
) -> str:
    if not data:
        return f"<p class='note'>{escape(note or MISSING)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows(data)
    )
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in data.get("notes") or [])
    images = "".join(
        f"<figure><img alt='{escape(f.title)}' src='data:image/png;base64,"
        f"{base64.b64encode(f.png).decode()}'><figcaption>{escape(f.title)}</figcaption></figure>"
        for f in figures
    )
    return (
        f"<p>{escape(INTRO)}</p><p><b>{escape(summary(data))}</b></p>{notes}"
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"</table></div><div class='figs'>{images}</div>"
    )


def interventions_markdown(
    data: dict[str, Any] | None, note: str | None, figures: list[ReportFigure], assets: str
) -> list[str]:
    lines = ["", f"## {TITLE}", ""]
    if not data:
        return [*lines, markdown_text(note or MISSING)]
    lines += [markdown_text(INTRO), "", f"**{markdown_text(summary(data))}**", ""]
    lines += [f"> {markdown_text(n)}" for n in data.get("notes") or []]
    lines += ["", "| " + " | ".join(markdown_text(h) for h in HEADERS) + " |"]
    lines.append("|" + "---|" * len(HEADERS))
    lines += ["| " + " | ".join(markdown_text(c) for c in row) + " |" for row in rows(data)]
    lines.append("")
    return lines + [f"![{markdown_text(f.title)}]({assets}/{f.name}.png)" for f in figures]

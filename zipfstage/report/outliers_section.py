"""The report's "Outlier channels" section, in HTML and Markdown, from outliers.json.

Token text comes from the tokenizer and is untrusted: every piece of it is escaped for HTML, and in
Markdown written as HTML entities (no code spans, which a backtick in the text would break), so
`<img src=x onerror=alert(1)>`, backticks, pipes and emphasis characters stay inert.
"""

from __future__ import annotations

import base64
from collections import Counter
from html import escape
from typing import Any

from zipfstage.formatting import fmt_fixed, fmt_number
from zipfstage.plotting import style
from zipfstage.plotting.hill_tail import hill_tail_figure
from zipfstage.plotting.massive import massive_figure
from zipfstage.plotting.outlier_channels import outlier_channels_figure
from zipfstage.report.escape import markdown_text
from zipfstage.report.figures import REPORT_DPI, ReportFigure
from zipfstage.report.sinks_section import sink_figures, sink_paragraph
from zipfstage.report.tokens import TailToken, show_token

SECTION = "outliers"
#: persistent channels listed per point in the report (outliers.json keeps `top_channels`)
REPORT_CHANNELS = 5
INTRO = (
    "Which hidden channels make the heavy tail. Massive activations (Sun et al. 2024): the "
    "largest |h| over all tokens and channels is above {sun_abs:g} and at least {sun_ratio:g} "
    "times the median |h| of the whole token \u00d7 channel tensor (estimated from per-token "
    "medians; the median of per-token medians is shown beside it). Outlier features (Dettmers "
    "et al. 2022): channels with |h| \u2265 {threshold:g} in at least {layer_share:.0%} of the "
    "layers and {position_share:.0%} of the tokens. A super-weight candidate (Yu et al. 2024) is "
    "a spike of the MLP's activation at column j that returns on the same tokens as a spike of "
    "its output at row i: the down projection's weight W[i, j]."
)


def outlier_figures(outliers: dict[str, Any] | None) -> list[ReportFigure]:
    """The three outlier figures as PNGs for the report (none without an analysis)."""
    if not outliers:
        return []
    figures = []
    for name, title, draw in (
        ("massive_activations", "Massive activations by layer", massive_figure),
        ("outlier_channels", "Top-1 channel share by layer", outlier_channels_figure),
        ("hill_tail", "Per-token channel tail index by layer", hill_tail_figure),
    ):
        figure = draw(outliers)
        if figure is not None:
            figures.append(ReportFigure(SECTION, name, title, style.png_bytes(figure, REPORT_DPI)))
    return figures + sink_figures(outliers)


def token_text(token: dict[str, Any]) -> str:
    """Readable token text (the report's own convention), plus its position and kind."""
    shown = show_token(TailToken(0, int(token.get("token_id", -1)), token.get("text"), 0, 0.0))
    kind = token.get("kind")
    note = {"first": "first position", "delimiter": "delimiter"}.get(str(kind), "")
    where = f"position {token.get('position')}" + (f", {note}" if note else "")
    return f"\u201c{shown}\u201d ({where})"


def outlier_rows(outliers: dict[str, Any]) -> dict[str, list[list[str]]]:
    """Every table of the section as rows of plain (unescaped) strings; renderers escape."""
    points = outliers.get("points") or {}
    return {
        "massive": [_massive_row(name, record) for name, record in points.items()],
        "dettmers": [
            [
                str(r.get("channel")),
                str(r.get("site")),
                _pct(r.get("layer_share")),
                _pct(r.get("position_share")),
                ", ".join(str(x) for x in r.get("layers", [])),
            ]
            for r in outliers.get("dettmers_channels") or []
        ],
        "persistent": [
            _persistent_row(name, channel)
            for name, record in points.items()
            for channel in (record.get("persistent_channels") or [])[:REPORT_CHANNELS]
        ],
        "super": [
            [
                str(r.get("layer")),
                str(r.get("row")),
                str(r.get("column")),
                fmt_number(r.get("mlp_act_max")),
                fmt_number(r.get("mlp_out_max")),
                _pct(r.get("cooccurrence")),
            ]
            for r in outliers.get("super_weights") or []
        ],
    }


HEADERS = {
    "massive": [
        "point",
        "top-1 |h|",
        "top-2",
        "top-3",
        "channels",
        "carried by",
        "median |h| (tensor)",
        "median (per-token)",
        "ratio",
        "massive (Sun)",
    ],
    "dettmers": ["channel", "site", "layer share", "token share", "layers"],
    "persistent": [
        "point",
        "channel",
        "top-1 share",
        "sign consistency",
        "at position 0",
        "mean position",
        "most frequent tokens",
        "layers",
    ],
    "super": [
        "layer",
        "row i (mlp_out)",
        "column j (mlp_act)",
        "max |act|",
        "max |out|",
        "same tokens",
    ],
}
TITLES = {
    "massive": "Massive activations per point",
    "dettmers": "Outlier features (Dettmers)",
    "persistent": f"Persistent top-1 channels (top {REPORT_CHANNELS} per point)",
    "super": "Super-weight candidates",
}
EMPTY = {
    "massive": "No point analysed.",
    "dettmers": "No channel meets both thresholds.",
    "persistent": "No top-1 channels recorded.",
    "super": "None (needs mlp_act and mlp_out collected at the same layer).",
}


def summary(outliers: dict[str, Any]) -> str:
    """One sentence: where massive activations start, in which channel, on which token."""
    first = outliers.get("first_massive_layer")
    if first is None:
        return "No collected point meets Sun et al.'s massive-activation criterion."
    for name, record in (outliers.get("points") or {}).items():
        massive = record.get("massive") or {}
        if record.get("layer") == first and massive.get("criterion"):
            channel = (massive.get("top_channels") or ["?"])[0]
            tokens = massive.get("top_tokens") or [{}]
            layer = "the embedding" if first < 0 else f"layer {first}"
            return (
                f"Massive activations first appear at {layer} ({name}): |h| = "
                f"{fmt_number((massive.get('top') or [None])[0])} in channel {channel}, "
                f"{fmt_number(massive.get('ratio'))} \u00d7 the median, carried by "
                f"{token_text(tokens[0])}."
            )
    return f"Massive activations first appear at layer {first}."


def _massive_row(name: str, record: dict[str, Any]) -> list[str]:
    massive = record.get("massive") or {}
    top = list(massive.get("top") or []) + [None] * 3
    criterion = massive.get("criterion")
    verdict = "yes" if criterion is True else "no" if criterion is False else "\u2014"
    shown = Counter(token_text(t) for t in massive.get("top_tokens") or [])
    carriers = "; ".join(f"{text} \u00d7{n}" if n > 1 else text for text, n in shown.items())
    return [
        name,
        *(fmt_number(v) for v in top[:3]),
        ", ".join(str(c) for c in massive.get("top_channels") or []),
        carriers or "\u2014",
        fmt_number(massive.get("median_global")),
        fmt_number(massive.get("median_token")),
        fmt_number(massive.get("ratio")),
        verdict,
    ]


def _persistent_row(point: str, channel: dict[str, Any]) -> list[str]:
    positions = channel.get("positions") or {}
    tokens = ", ".join(
        f"\u201c{show_token(TailToken(0, int(t['token_id']), t.get('text'), 0, 0.0))}\u201d "
        f"\u00d7{t.get('count')}"
        for t in channel.get("tokens") or []
    )
    return [
        point,
        str(channel.get("channel")),
        _pct(channel.get("top1_share")),
        fmt_fixed(channel.get("sign_consistency")),
        _pct(positions.get("position_0_share")),
        fmt_fixed(positions.get("mean_position"), 1),
        tokens or "\u2014",
        ", ".join(str(x) for x in channel.get("layers", [])),
    ]


def _pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{100 * value:.3g}%"


def _intro(outliers: dict[str, Any]) -> str:
    s = outliers.get("settings") or {}
    return INTRO.format(
        sun_abs=s.get("sun_abs", 100.0),
        sun_ratio=s.get("sun_ratio", 1000.0),
        threshold=s.get("dettmers_threshold", 6.0),
        layer_share=s.get("dettmers_layer_share", 0.25),
        position_share=s.get("dettmers_position_share", 0.06),
    )


def outliers_html(
    outliers: dict[str, Any] | None, note: str | None, figures: list[ReportFigure]
) -> str:
    """The section body for report.html; `figures` are those of `outlier_figures`."""
    if not outliers:
        return f"<p class='note'>{escape(note or _MISSING)}</p>"
    parts = [f"<p>{escape(_intro(outliers))}</p>", f"<p><b>{escape(summary(outliers))}</b></p>"]
    if sinks := sink_paragraph(outliers):
        parts.append(f"<p>{escape(sinks)}</p>")
    for key, rows in outlier_rows(outliers).items():
        parts.append(f"<h3>{escape(TITLES[key])}</h3>")
        if not rows:
            parts.append(f"<p class='note'>{escape(EMPTY[key])}</p>")
            continue
        head = "".join(f"<th>{escape(h)}</th>" for h in HEADERS[key])
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        parts.append(
            f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )
    images = "".join(
        f"<figure><img alt='{escape(f.title)}' src='data:image/png;base64,"
        f"{base64.b64encode(f.png).decode()}'><figcaption>{escape(f.title)}</figcaption></figure>"
        for f in figures
    )
    parts.append(f"<div class='figs'>{images}</div>")
    return "\n".join(parts)


def outliers_markdown(
    outliers: dict[str, Any] | None, note: str | None, figures: list[ReportFigure], assets: str
) -> list[str]:
    """The section for report.md (figures are the PNGs the report writes into `assets`)."""
    lines = ["", "## Outlier channels", ""]
    if not outliers:
        return [*lines, markdown_text(note or _MISSING)]
    lines += [markdown_text(_intro(outliers)), "", f"**{markdown_text(summary(outliers))}**", ""]
    if sinks := sink_paragraph(outliers):
        lines += [markdown_text(sinks), ""]
    for key, rows in outlier_rows(outliers).items():
        lines += [f"### {TITLES[key]}", ""]
        if not rows:
            lines += [EMPTY[key], ""]
            continue
        lines.append("| " + " | ".join(markdown_text(h) for h in HEADERS[key]) + " |")
        lines.append("|" + "---|" * len(HEADERS[key]))
        lines += ["| " + " | ".join(markdown_text(c) for c in row) + " |" for row in rows]
        lines.append("")
    return lines + [f"![{markdown_text(f.title)}]({assets}/{f.name}.png)" for f in figures]


_MISSING = (
    "No outlier analysis: collect with --topk K (K > 0), then run `zipfstage fit`, which writes "
    "outliers.json."
)

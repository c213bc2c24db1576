"""compare.html: one self-contained page, with the report's CSS, sorting script and embedding."""

from __future__ import annotations

from html import escape

from zipfstage.compare.content import CompareContent
from zipfstage.compare.rows import (
    EXPLAIN_DEPTH,
    EXPLAIN_PAPER,
    EXPLAIN_VERDICTS,
    Table,
    paper_table,
    runs_table,
    verdict_table,
)
from zipfstage.report.html import figures_html, html_page


def render_html(content: CompareContent) -> str:
    notes = "".join(f"<p class='note'>Note: {escape(n)}</p>" for n in content.notes)
    massive = "<p class='note'>No run has an outlier analysis (outliers.json).</p>"
    if content.paper:
        massive = (
            f"<p>{escape(EXPLAIN_PAPER)}</p>"
            + _table(paper_table(content), "massive-table")
            + _figures(content, "massive_by_depth")
        )
    sections = [
        f"<h1>{escape(content.title)}</h1>\n<p class='sub'>Generated {escape(content.generated)}"
        f" \u00b7 metrics: {escape(', '.join(content.metrics))}</p>\n{notes}",
        _section("runs", "The runs", _table(runs_table(content), "runs-table")),
        _section(
            "verdicts",
            "Power law plausible, by run and metric",
            f"<p>{escape(EXPLAIN_VERDICTS)}</p>" + _table(verdict_table(content), "verdict-table"),
        ),
        _section(
            "alpha",
            "\u03b1 by relative depth",
            f"<p>{escape(EXPLAIN_DEPTH)}</p>" + _figures(content, "alpha_by_depth"),
        ),
        _section("ccdf", "CCDFs at matching depth", _figures(content, "ccdf_overlay")),
        _section("massive", "Massive activations", massive),
    ]
    return html_page(content.title, sections)


def _section(key: str, title: str, body: str) -> str:
    return f"<section id='{key}'>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _table(table: Table, table_id: str) -> str:
    head, rows = table
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        f"<div class='scroll'><table class='sortable' id='{table_id}'><thead><tr>{header}</tr>"
        f"</thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _figures(content: CompareContent, prefix: str) -> str:
    return figures_html([f.embedded for f in content.section(prefix)])

"""report.md: the same content as report.html, with images as files in report_files/.

Every piece of text that comes from the store or the user (model and data names, points,
metrics, token text, reasons) goes through `markdown_text`, so nothing in it renders as markup.
"""

from __future__ import annotations

from zipfstage.formatting import fmt_alpha, fmt_fixed, fmt_interval, fmt_number, fmt_p_value
from zipfstage.report.by_site import by_site_markdown, site_grid
from zipfstage.report.content import FitRow, ReportContent
from zipfstage.report.escape import markdown_code, markdown_path, markdown_text
from zipfstage.report.figures import ReportFigure
from zipfstage.report.interventions_section import interventions_markdown
from zipfstage.report.outliers_section import outliers_markdown
from zipfstage.report.summary import Finding
from zipfstage.report.tokens import PointTail, TokenGroup, show_positions, show_token
from zipfstage.report.verdict import EXPLANATION
from zipfstage.store.layout import REPORT_ASSETS

#: the GitHub-style anchors of report.md's own headings, for findings that link to a section
SECTION_ANCHORS = {"tails": "#where-the-tail-comes-from", "fits": "#fits"}


def render_markdown(content: ReportContent) -> str:
    lines = [f"# {markdown_text(content.title)}", "", f"Generated {content.generated}.", ""]
    lines += [f"> Note: {markdown_text(note)}" for note in content.notes]
    lines += ["", "## Summary", "", *_summary(content.findings)]
    lines += ["", "## The run", "", "| | |", "|---|---|"]
    lines += [f"| {markdown_text(k)} | {markdown_text(v)} |" for k, v in content.run]
    lines += ["", "## Fits", "", EXPLANATION, "", *_table(content.rows)]
    if content.channel_rows:
        lines += ["", "### Per-channel fits", "", *_table(content.channel_rows, channel=True)]
    lines += ["", "## Dashboards", "", *_images(content.section("dashboards"))]
    lines += by_site_markdown(site_grid(content.rows, content.tail_metric))
    lines += ["", "## CCDFs by depth", "", *_images(content.section("depth"))]
    lines += ["", "## CCDF of every fit", "", *_images(content.section("ccdf"))]
    lines += ["", "## Where the tail comes from", ""]
    for tail in content.tails:
        lines += _tail(tail, content.tail_metric)
    lines += outliers_markdown(*content.outliers, content.section("outliers"), REPORT_ASSETS)
    lines += interventions_markdown(
        *content.ablation, content.section("interventions"), REPORT_ASSETS
    )
    return "\n".join(lines).rstrip() + "\n"


def _summary(findings: list[Finding]) -> list[str]:
    """One bullet per finding, linking to its figure's file (or to a section of this page)."""
    return [f"- {markdown_text(f.text)} ({_link(f)})" for f in findings] or ["Nothing fitted yet."]


def _link(finding: Finding) -> str:
    if finding.figure:
        return f"[figure]({_image_path(finding.figure)})"
    return f"[table]({SECTION_ANCHORS.get(finding.section or '', '#summary')})"


def _image_path(name: str) -> str:
    return markdown_path(f"{REPORT_ASSETS}/{name}.png")


def _table(rows: list[FitRow], channel: bool = False) -> list[str]:
    out = [
        "| point | metric | alpha | 95% CI | xmin | n_tail | KS D | slope | R² | p | verdict "
        "| likelihood ratios |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        fit = row.fit
        metric = f"{fit.metric}[{fit.channel}]" if channel else fit.metric
        alpha = fit.alpha if fit.ok else None
        ci = fmt_interval(fit.alpha_ci, alpha, sep="-")
        n_tail = f"{fit.n_tail:,}" if fit.n_tail is not None else "—"
        out.append(
            f"| {markdown_text(fit.point)} | {markdown_text(metric)} "
            f"| {fmt_alpha(alpha, fit.alpha_binned if fit.binning_moves_alpha else None)} | {ci} "
            f"| {fmt_number(fit.xmin)} | {n_tail} | {fmt_number(fit.ks_distance)} "
            f"| {fmt_fixed(fit.slope, 3)} | {fmt_fixed(fit.r2, 3)} "
            f"| {fmt_p_value(fit.p_value, fit.n_failed)} "
            f"| {markdown_text(row.verdict.text)} | {markdown_text(row.alternatives.text)} |"
        )
    return out


def _images(figures: list[ReportFigure]) -> list[str]:
    return [f"![{markdown_text(f.title)}]({_image_path(f.name)})" for f in figures] or [
        "No figures."
    ]


def _tail(tail: PointTail, metric: str) -> list[str]:
    lines = [
        f"### {markdown_text(tail.point)}",
        "",
        f"Top {markdown_code(metric)}: {markdown_text(tail.summary)}.",
        "",
        "By token, every position:",
        "",
        *_groups(tail.groups),
        "",
        "By token, without position 0:",
        "",
        *_groups(tail.groups_after_first),
        "",
        "| # | token | id | position | value |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [
        f"| {t.rank} | {markdown_code(show_token(t))} | {t.token_id} | {t.position} | "
        f"{fmt_number(t.value, 4)} |"
        for t in tail.tokens
    ]
    return [*lines, ""]


def _groups(groups: list[TokenGroup]) -> list[str]:
    if not groups:
        return ["No finite values."]
    return [
        "| token | id | count | max value | positions | share |",
        "|---|---:|---:|---:|---|---:|",
        *(
            f"| {markdown_code(show_token(g))} | {g.token_id} | {g.count} "
            f"| {fmt_number(g.max_value, 4)} | {show_positions(g.positions)} | {g.share:.0%} |"
            for g in groups
        ),
    ]

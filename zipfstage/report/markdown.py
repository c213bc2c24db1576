"""report.md: the same content as report.html, with images as files in report_files/."""

from __future__ import annotations

from zipfstage.formatting import fmt_fixed, fmt_number, fmt_p_value
from zipfstage.report.by_site import by_site_markdown, site_grid
from zipfstage.report.content import FitRow, ReportContent
from zipfstage.report.figures import ReportFigure
from zipfstage.report.outliers_section import outliers_markdown
from zipfstage.report.tokens import show_token
from zipfstage.report.verdict import EXPLANATION
from zipfstage.store.layout import REPORT_ASSETS


def render_markdown(content: ReportContent) -> str:
    lines = [f"# {content.title}", "", f"Generated {content.generated}.", ""]
    lines += [f"> Note: {note}" for note in content.notes]
    lines += ["", "## The run", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in content.run]
    lines += ["", "## Fits", "", EXPLANATION, "", *_table(content.rows)]
    if content.channel_rows:
        lines += ["", "### Per-channel fits", "", *_table(content.channel_rows, channel=True)]
    lines += ["", "## Dashboards", "", *_images(content.section("dashboards"))]
    lines += by_site_markdown(site_grid(content.rows, content.tail_metric))
    lines += ["", "## CCDFs by depth", "", *_images(content.section("depth"))]
    lines += ["", "## CCDF of every fit", "", *_images(content.section("ccdf"))]
    lines += ["", "## Where the tail comes from", ""]
    for tail in content.tails:
        lines += [
            f"### {tail.point}",
            "",
            f"Top `{content.tail_metric}`: {tail.summary}.",
            "",
            "| # | token | id | position | value |",
            "|---:|---|---:|---:|---:|",
        ]
        lines += [
            f"| {t.rank} | `{_cell(show_token(t))}` | {t.token_id} | {t.position} | "
            f"{fmt_number(t.value, 4)} |"
            for t in tail.tokens
        ]
        lines.append("")
    lines += outliers_markdown(*content.outliers, content.section("outliers"), REPORT_ASSETS)
    return "\n".join(lines).rstrip() + "\n"


def _table(rows: list[FitRow], channel: bool = False) -> list[str]:
    out = [
        "| point | metric | alpha | 95% CI | xmin | n_tail | KS D | slope | R² | p | verdict "
        "| likelihood ratios |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        fit = row.fit
        metric = f"{fit.metric}[{fit.channel}]" if channel else fit.metric
        ci = f"{fmt_fixed(fit.alpha_ci[0])}-{fmt_fixed(fit.alpha_ci[1])}" if fit.alpha_ci else "—"
        n_tail = f"{fit.n_tail:,}" if fit.n_tail is not None else "—"
        out.append(
            f"| {fit.point} | {metric} | {fmt_fixed(fit.alpha if fit.ok else None)} | {ci} "
            f"| {fmt_number(fit.xmin)} | {n_tail} | {fmt_number(fit.ks_distance)} "
            f"| {fmt_fixed(fit.slope, 3)} | {fmt_fixed(fit.r2, 3)} "
            f"| {fmt_p_value(fit.p_value, fit.n_failed)} "
            f"| {_cell(row.verdict.text)} | {_cell(row.alternatives.text)} |"
        )
    return out


def _images(figures: list[ReportFigure]) -> list[str]:
    return [f"![{f.title}]({REPORT_ASSETS}/{f.name}.png)" for f in figures] or ["No figures."]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

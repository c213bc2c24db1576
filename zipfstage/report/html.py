"""report.html: one self-contained page (inline CSS, a few lines of inline JS, base64 PNGs)."""

from __future__ import annotations

import base64
from html import escape
from urllib.parse import quote

from zipfstage.formatting import fmt_alpha, fmt_fixed, fmt_interval, fmt_number, fmt_p_value
from zipfstage.records import ALTERNATIVE_LABELS, ALTERNATIVES, FitRecord
from zipfstage.report.by_site import by_site_html, site_grid
from zipfstage.report.content import FitRow, ReportContent
from zipfstage.report.figures import ReportFigure
from zipfstage.report.filtering import FILTER_JS, FILTERABLE, filter_controls, row_attributes
from zipfstage.report.interventions_section import interventions_html
from zipfstage.report.outliers_section import outliers_html
from zipfstage.report.summary import Finding
from zipfstage.report.tokens import PointTail, TokenGroup, show_positions, show_token
from zipfstage.report.verdict import EXPLANATION, comparison_verdict

CSS = """
:root { --ink: #1d2733; --muted: #5f6b7a; --line: #dde2e8; --accent: #1f3b73; }
* { box-sizing: border-box; }
body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #f6f7f9; }
main { max-width: 1320px; margin: 0 auto; padding: 28px 28px 60px; background: white; }
h1 { font-size: 1.7em; margin: 0 0 4px; } h2 { margin-top: 2.2em; border-bottom: 2px solid
  var(--line); padding-bottom: 4px; } h3 { margin-bottom: 4px; }
.sub, .note, figcaption { color: var(--muted); } .sub { margin-top: 0; }
nav a { margin-right: 14px; color: var(--accent); }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 10px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
         vertical-align: top; }
th { background: #eef1f5; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #9aa5b1; }
table.sortable th[data-order="asc"]::after { content: " \\2191"; color: var(--ink); }
table.sortable th[data-order="desc"]::after { content: " \\2193"; color: var(--ink); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.run th { width: 190px; position: static; }
.scroll { overflow-x: auto; max-width: 100%; }
td.verdict { min-width: 12em; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12.5px; }
.plausible, .power-law { background: #dff3e4; color: #1b5e2b; }
.ruled-out, .alternative { background: #fbe1e1; color: #8a1c1c; }
.untested, .inconclusive { background: #eceff3; color: #4a5562; }
.failed { background: #fff1d6; color: #7a4b00; }
.not-fitted { background: #f3f0f7; color: #5a4a6e; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 18px; }
.figs.wide { grid-template-columns: 1fr; }
figure { margin: 0; min-width: 0; }
img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figure.wide img { width: 100%; }
.summary { background: #f4f7fb; border-left: 4px solid var(--accent); padding: 8px 18px; }
.summary li { margin: 4px 0; }
.tails { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px; }
.tails > div { min-width: 0; }
code { background: #f1f3f6; padding: 0 4px; border-radius: 3px; white-space: pre; }
details > summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
.filters { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin: 8px 0; }
.filters select { max-width: 16em; margin-left: 4px; }
tr[hidden] { display: none; }
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? "asc" : "desc";
      var key = function (row) {
        var cell = row.cells[col], raw = cell.dataset.value;
        if (raw === undefined) return cell.textContent.trim().toLowerCase();
        return raw === "" ? (asc ? Infinity : -Infinity) : parseFloat(raw);
      };
      var body = table.tBodies[0];
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return asc ? order : -order;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

FIT_COLUMNS = [
    "point",
    "metric",
    "\u03b1",
    "95% CI of \u03b1",
    "xmin",
    "n_tail",
    "KS D",
    "OLS slope",
    "R\u00b2",
    "p (bootstrap)",
    "goodness of fit (Clauset)",
    "likelihood ratios",
]


def render_html(content: ReportContent) -> str:
    by_site = site_grid(content.rows, content.tail_metric)
    sections = [
        _header(content, with_sites=by_site is not None),
        _section("summary", "Summary", _summary(content.findings)),
        _section("run", "The run", _run_table(content)),
        _section("fits", "Fits", _fits(content)),
        _section(
            "dashboards", "Dashboards", figures_html(content.section("dashboards"), wide=True)
        ),
        *[_section("sites", "By site", by_site_html(grid)) for grid in [by_site] if grid],
        _section(
            "depth",
            "CCDFs by depth",
            "<p class='note'>Every point's empirical CCDF of one "
            "metric, coloured from dark (shallow) to light (deep).</p>"
            + figures_html(content.section("depth")),
        ),
        _section(
            "ccdf",
            "CCDF of every fit",
            "<p class='note'>Empirical CCDF of all the data, "
            "the fitted power law from xmin on (scaled to the tail's share of the data) and "
            "the best alternative's tail.</p>" + figures_html(content.section("ccdf")),
        ),
        _section("tails", "Where the tail comes from", _tails(content)),
        _section(
            "outliers",
            "Outlier channels",
            outliers_html(*content.outliers, content.section("outliers")),
        ),
        _section(
            "interventions",
            "Interventions",
            interventions_html(*content.ablation, content.section("interventions")),
        ),
    ]
    return html_page(content.title, sections)


def html_page(title: str, sections: list[str]) -> str:
    """One self-contained page: the shared style and the table scripts (sort, filter) inline."""
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(sections)
        + f"\n</main>\n<script>{SORT_JS}{FILTER_JS}</script>\n</body>\n</html>\n"
    )


def _header(content: ReportContent, with_sites: bool = False) -> str:
    notes = "".join(f"<p class='note'>Note: {escape(n)}</p>" for n in content.notes)
    links = "".join(
        f"<a href='#{key}'>{label}</a>"
        for key, label in (
            ("summary", "Summary"),
            ("run", "Run"),
            ("fits", "Fits"),
            ("dashboards", "Dashboards"),
            *([("sites", "By site")] if with_sites else []),
            ("depth", "By depth"),
            ("ccdf", "CCDFs"),
            ("tails", "Tail tokens"),
            ("outliers", "Outlier channels"),
            ("interventions", "Interventions"),
        )
    )
    return (
        f"<h1>{escape(content.title)}</h1>\n<p class='sub'>Generated {content.generated} "
        f"\u00b7 {len(content.rows)} (point, metric) pairs</p>\n<nav>{links}</nav>\n{notes}"
    )


def figure_id(name: str) -> str:
    """A figure's anchor: safe in an attribute and in a fragment, whatever the name holds."""
    return "fig-" + quote(name, safe="")


def _summary(findings: list[Finding]) -> str:
    """One sentence per finding, each linking to its figure (or its section)."""
    if not findings:
        return "<p class='note'>Nothing fitted yet.</p>"
    items = "".join(
        f"<li>{escape(f.text)} <a href='#{_target(f)}'>{'figure' if f.figure else 'table'}</a></li>"
        for f in findings
    )
    return f"<ul class='summary'>{items}</ul>"


def _target(finding: Finding) -> str:
    if finding.figure:
        return figure_id(finding.figure)
    return quote(finding.section or "summary", safe="")


def _section(key: str, title: str, body: str) -> str:
    return f"<section id='{key}'>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _run_table(content: ReportContent) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in content.run)
    return f"<table class='run'><tbody>{rows}</tbody></table>"


def _num(value: float | int | None, text: str | None = None, digits: int | None = None) -> str:
    if text is not None:
        shown = text
    elif isinstance(value, int):
        shown = f"{value:,}"
    else:
        shown = fmt_fixed(value, digits) if digits is not None else fmt_number(value)
    raw = "" if value is None else repr(float(value))
    return f"<td class='num' data-value='{raw}'>{escape(shown)}</td>"


def _badge(text: str, kind: str) -> str:
    return f"<span class='badge {kind}'>{escape(text)}</span>"


def _fit_cells(row: FitRow, metric_label: str) -> str:
    fit = row.fit
    alpha = fit.alpha if fit.ok else None
    ci = fmt_interval(fit.alpha_ci, alpha)
    return (
        f"<td data-value='{row.depth}'>{escape(fit.point)}</td><td>{escape(metric_label)}</td>"
        + _num(alpha, fmt_alpha(alpha, fit.alpha_binned if fit.binning_moves_alpha else None))
        + _num(fit.alpha_ci[0] if fit.alpha_ci else None, ci)
        + _num(fit.xmin)
        + _num(fit.n_tail)
        + _num(fit.ks_distance)
        + _num(fit.slope, digits=3)
        + _num(fit.r2, digits=3)
        + _num(fit.p_value, fmt_p_value(fit.p_value, fit.n_failed))
        + f"<td class='verdict'>{_badge(row.verdict.text, row.verdict.kind)}</td>"
        + f"<td class='verdict'>{_badge(row.alternatives.text, row.alternatives.kind)}</td>"
    )


def _fit_table(rows: list[FitRow], table_id: str, channel: bool = False) -> str:
    """Every fit's row; the scalar fits' table is filterable (the channel fits' is not)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in FIT_COLUMNS)
    body = "\n".join(
        f"<tr{'' if channel else row_attributes(r)}>{_fit_cells(r, _metric_label(r.fit, channel))}"
        "</tr>"
        for r in rows
    )
    kind = "sortable" if channel else f"sortable {FILTERABLE}"
    return (
        f"<div class='scroll'><table class='{kind}' id='{table_id}'><thead><tr>{head}"
        f"</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _metric_label(fit: FitRecord, channel: bool) -> str:
    return f"{fit.metric}[{fit.channel}]" if channel else fit.metric


def _fits(content: ReportContent) -> str:
    parts = [
        f"<p>{escape(EXPLANATION)}</p>",
        "<p class='note'>Click a column header to sort; choose values above the table to filter "
        "it (the address keeps the filter: <code>#filter=metric:rms;verdict:plausible</code>). "
        "\u03b1 is the exponent of the density "
        "p(x) \u221d x<sup>\u2212\u03b1</sup> above xmin; n_tail is the number of values the "
        "power law describes; the OLS slope and R\u00b2 come from a straight line through the "
        "log-log rank\u2013frequency plot (a quick, biased check, not a test).</p>",
        filter_controls(content.rows),
        _fit_table(content.rows, "fit-table"),
        "<h3>Likelihood-ratio tests against each alternative</h3>",
        _comparison_table(content.rows),
    ]
    if content.channel_rows:
        parts.append(
            f"<details><summary>Per-channel fits ({len(content.channel_rows)})</summary>"
            + _fit_table(content.channel_rows, "channel-table", channel=True)
            + "</details>"
        )
    return "\n".join(parts)


def _comparison_table(rows: list[FitRow]) -> str:
    head = "<th>point</th><th>metric</th>" + "".join(
        f"<th>{escape(ALTERNATIVE_LABELS[a])}</th>" for a in ALTERNATIVES
    )
    lines = []
    for row in rows:
        cells = f"<td data-value='{row.depth}'>{escape(row.fit.point)}</td>"
        cells += f"<td>{escape(row.fit.metric)}</td>"
        for name in ALTERNATIVES:
            comparison = row.fit.comparisons.get(name)
            if comparison is None or not row.fit.ok:
                cells += "<td data-value=''>\u2014</td>"
                continue
            verdict = comparison_verdict(comparison)
            stats = f"R = {fmt_number(comparison.R)}, p = {fmt_number(comparison.p, 2)}"
            raw = "" if comparison.R is None else repr(comparison.R)
            cells += (
                f"<td data-value='{raw}'>{escape(stats)}<br>"
                f"{_badge(verdict.text, verdict.kind)}</td>"
            )
        lines.append(f"<tr{row_attributes(row)}>{cells}</tr>")
    return (
        f"<div class='scroll'><table class='sortable {FILTERABLE}' id='lr-table'><thead><tr>{head}"
        f"</tr></thead><tbody>{''.join(lines)}</tbody></table></div>"
    )


def figures_html(figures: list[ReportFigure], wide: bool = False) -> str:
    if not figures:
        return "<p class='note'>No figures.</p>"
    grid = "figs wide" if wide else "figs"
    return f"<div class='{grid}'>{''.join(_figure(f) for f in figures)}</div>"


def _figure(figure: ReportFigure) -> str:
    """One embedded PNG (or, when the figure has a link, the file beside the page, loaded as it
    scrolls into view) with its anchor; a wide figure takes the page's full width."""
    kind = " class='wide'" if figure.wide else ""
    title = escape(figure.title)
    if figure.link is not None:
        source = f"{escape(figure.link)}' loading='lazy"
    else:
        source = f"data:image/png;base64,{base64.b64encode(figure.png).decode()}"
    return (
        f"<figure id='{figure_id(figure.name)}'{kind}><img alt='{title}' "
        f"src='{source}'><figcaption>{title}</figcaption></figure>"
    )


def _tails(content: ReportContent) -> str:
    if not content.tails:
        return "<p class='note'>Tail tokens not requested (--top-tokens 0).</p>"
    intro = (
        f"<p>For each point, the {len(content.tails[0].tokens)} tokens with the largest "
        f"<code>{escape(content.tail_metric)}</code>, grouped by token: how many of them it is, "
        "its largest value, the positions it sits at (0 = first) and its share of the tail; "
        "then the same without position 0, so a tail made of the first token still shows what "
        "comes next. A tail made of first-position or delimiter tokens says more about "
        "attention sinks than about the typical token.</p>"
    )
    return intro + "<div class='tails'>" + "".join(_tail_card(t) for t in content.tails) + "</div>"


def _tail_card(tail: PointTail) -> str:
    rows = "".join(
        f"<tr><td class='num'>{t.rank}</td><td><code>{escape(show_token(t))}</code></td>"
        f"<td class='num'>{t.token_id}</td><td class='num'>{t.position}</td>"
        f"<td class='num'>{escape(fmt_number(t.value, 4))}</td></tr>"
        for t in tail.tokens
    )
    return (
        f"<div id='tail-{quote(tail.point, safe='')}'><h3>{escape(tail.point)}</h3>"
        f"<p class='note'>{escape(tail.summary)}</p>"
        f"<h4>By token, every position</h4>{_group_table(tail.groups)}"
        f"<h4>By token, without position 0</h4>{_group_table(tail.groups_after_first)}"
        f"<details><summary>The top {len(tail.tokens)} values one by one</summary>"
        "<table><thead><tr><th>#</th><th>token</th><th>id</th><th>position</th>"
        f"<th>value</th></tr></thead><tbody>{rows}</tbody></table></details></div>"
    )


def _group_table(groups: list[TokenGroup]) -> str:
    if not groups:
        return "<p class='note'>No finite values.</p>"
    rows = "".join(
        f"<tr><td><code>{escape(show_token(g))}</code></td><td class='num'>{g.token_id}</td>"
        f"<td class='num'>{g.count}</td><td class='num'>{escape(fmt_number(g.max_value, 4))}</td>"
        f"<td>{escape(show_positions(g.positions))}</td><td class='num'>{g.share:.0%}</td></tr>"
        for g in groups
    )
    return (
        "<table class='groups'><thead><tr><th>token</th><th>id</th><th>count</th>"
        "<th>max value</th><th>positions</th><th>share</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )

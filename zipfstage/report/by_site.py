"""The report's "by site" view: one metric's fitted alpha with layers as rows and the sites of a
block as columns, so a reader sees where inside the block a heavy tail appears."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from zipfstage.formatting import fmt_fixed
from zipfstage.point_names import EMBED, RESID_POST, SITE_DESCRIPTIONS, SITES, parse_point
from zipfstage.report.content import FitRow

INTRO = (
    "Fitted power-law exponent \u03b1 of {metric} (the report's tail metric, "
    "report.tail_metric) at every collected site, columns in block order. A smaller \u03b1 is a "
    "heavier tail."
)


@dataclass(frozen=True)
class SiteGrid:
    """Rows are layers (-1 for embed), columns the sites collected anywhere, in block order."""

    metric: str
    layers: list[int]
    sites: list[str]
    cells: dict[tuple[int, str], FitRow]


def site_grid(rows: list[FitRow], metric: str) -> SiteGrid | None:
    """The grid of one metric's fits; None when only one site was collected (nothing to compare)."""
    cells: dict[tuple[int, str], FitRow] = {}
    for row in rows:
        where = parse_point(row.fit.point)
        if row.fit.metric != metric or where is None:
            continue
        layer, site = where
        cells[(layer, RESID_POST if site == EMBED else site)] = row
    sites = [s for s in SITES if any(site == s for _, site in cells)]
    if len(sites) < 2:
        return None
    layers = sorted({layer for layer, _ in cells})
    return SiteGrid(metric, layers, sites, cells)


def _layer_label(layer: int) -> str:
    return EMBED if layer < 0 else f"layer {layer}"


def by_site_html(grid: SiteGrid | None) -> str:
    if grid is None:
        return "<p class='note'>One site per layer was collected: see the fits above.</p>"
    head = "".join(
        f"<th title='{escape(SITE_DESCRIPTIONS[s])}'>{escape(s)}</th>" for s in grid.sites
    )
    body = []
    for layer in grid.layers:
        cells = []
        for site in grid.sites:
            row = grid.cells.get((layer, site))
            if row is None:
                cells.append("<td class='num'>\u2014</td>")
                continue
            alpha = row.fit.alpha if row.fit.ok else None
            cells.append(
                f"<td class='num'><span class='badge {row.verdict.kind}' "
                f"title='{escape(row.verdict.text)}'>{escape(fmt_fixed(alpha))}</span></td>"
            )
        body.append(f"<tr><th>{escape(_layer_label(layer))}</th>{''.join(cells)}</tr>")
    return (
        f"<p class='note'>{escape(INTRO.format(metric=grid.metric))} Colour: the "
        "goodness-of-fit verdict (hover for it).</p>"
        f"<div class='scroll'><table><thead><tr><th>layer</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def by_site_markdown(grid: SiteGrid | None) -> list[str]:
    if grid is None:
        return []
    lines = ["", "## By site", "", INTRO.format(metric=f"`{grid.metric}`"), ""]
    lines += ["| layer | " + " | ".join(grid.sites) + " |"]
    lines += ["|---|" + "---:|" * len(grid.sites)]
    for layer in grid.layers:
        values = []
        for site in grid.sites:
            row = grid.cells.get((layer, site))
            alpha = row.fit.alpha if row is not None and row.fit.ok else None
            values.append("—" if row is None else f"{fmt_fixed(alpha)} ({row.verdict.kind})")
        lines.append(f"| {_layer_label(layer)} | " + " | ".join(values) + " |")
    return lines

"""compare.md: the comparison's tables and figure links, every untrusted string made inert."""

from __future__ import annotations

from pathlib import Path

from zipfstage.compare.content import CompareContent, SavedFigure
from zipfstage.compare.rows import (
    EXPLAIN_DEPTH,
    EXPLAIN_PAPER,
    EXPLAIN_VERDICTS,
    Table,
    paper_table,
    runs_table,
    verdict_table,
)
from zipfstage.report.escape import markdown_text


def render_markdown(content: CompareContent, out_dir: Path) -> str:
    lines = [f"# {markdown_text(content.title)}", "", f"Generated {content.generated}.", ""]
    lines += [f"> Note: {markdown_text(note)}" for note in content.notes]
    lines += ["", "## The runs", "", *_table(runs_table(content))]
    lines += ["", "## Power law plausible, by run and metric", "", EXPLAIN_VERDICTS, ""]
    lines += _table(verdict_table(content))
    lines += ["", "## \u03b1 by relative depth", "", EXPLAIN_DEPTH, ""]
    lines += _images(content.section("alpha_by_depth"), out_dir)
    lines += ["", "## CCDFs at matching depth", ""]
    lines += _images(content.section("ccdf_overlay"), out_dir)
    lines += ["", "## Massive activations", ""]
    if content.paper:
        lines += [EXPLAIN_PAPER, "", *_table(paper_table(content)), ""]
        lines += _images(content.section("massive_by_depth"), out_dir)
    else:
        lines.append("No run has an outlier analysis (outliers.json).")
    return "\n".join(lines).rstrip() + "\n"


def _table(table: Table) -> list[str]:
    head, rows = table
    out = ["| " + " | ".join(markdown_text(h) for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows]
    return out


def _images(figures: list[SavedFigure], out_dir: Path) -> list[str]:
    lines = []
    for figure in figures:
        if figure.files:
            link = figure.files[0].relative_to(out_dir).as_posix()
            lines += [f"![{markdown_text(figure.embedded.title)}]({link})", ""]
    return lines or ["No figures."]

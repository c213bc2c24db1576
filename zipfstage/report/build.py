"""`zipfstage report`: gather, then write report.html, report.md and its images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from zipfstage.report.content import gather
from zipfstage.report.html import render_html
from zipfstage.report.markdown import ASSETS_DIR, render_markdown

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"


@dataclass(frozen=True)
class ReportResult:
    html: Path
    markdown: Path
    n_fits: int
    seconds: float


def build_report(out_dir: Path, top_tokens: int = 20, tail_metric: str = "max_abs") -> ReportResult:
    """Write DIR/report.html (self-contained) and DIR/report.md (+ DIR/report_files/*.png)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    content = gather(out_dir, top_tokens, tail_metric)
    assets = out_dir / ASSETS_DIR
    assets.mkdir(parents=True, exist_ok=True)
    for figure in content.figures:
        (assets / f"{figure.name}.png").write_bytes(figure.png)
    html_path = _write(out_dir / HTML_NAME, render_html(content))
    md_path = _write(out_dir / MARKDOWN_NAME, render_markdown(content))
    return ReportResult(html_path, md_path, len(content.rows), time.perf_counter() - started)


def _write(path: Path, text: str) -> Path:
    """Atomic: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

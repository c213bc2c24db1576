"""The report stage: gather, then write report.html, report.md and report.md's images."""

from __future__ import annotations

import time
from pathlib import Path

from zipfstage.config import ReportSettings
from zipfstage.report.content import gather
from zipfstage.report.html import render_html
from zipfstage.report.markdown import render_markdown
from zipfstage.stage import Progress, StageResult
from zipfstage.store.layout import RunFolder
from zipfstage.store.lock import holds_reading_lock


@holds_reading_lock
def run(settings: ReportSettings, run_dir: Path, progress: Progress | None = None) -> StageResult:
    """Write DIR/report.html (self-contained) and DIR/report.md (+ DIR/report_files/*.png)."""
    started = time.perf_counter()
    folder = RunFolder.at(run_dir)
    if progress:
        progress(0, 2)
    content = gather(folder.root, settings.top_tokens, settings.tail_metric)
    if progress:
        progress(1, 2)
    folder.report_assets.mkdir(parents=True, exist_ok=True)
    images = []
    for figure in content.figures:
        images.append(folder.report_assets / f"{figure.name}.png")
        images[-1].write_bytes(figure.png)
    html = _write(folder.report_html, render_html(content))
    markdown = _write(folder.report_markdown, render_markdown(content))
    if progress:
        progress(2, 2)
    seconds = time.perf_counter() - started
    return StageResult(
        stage="report",
        summary=f"wrote {html} and {markdown} ({len(content.rows)} fits) in {seconds:.1f} s",
        outputs=(html, markdown, *images),
        seconds=seconds,
        counts={"fits": len(content.rows), "figures": len(images)},
    )


def _write(path: Path, text: str) -> Path:
    """Atomic: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

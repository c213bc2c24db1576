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
    """Write DIR/report.html and DIR/report.md with their figures in DIR/report_files/; the page
    is self-contained up to `embed_mb` of figures (see `zipfstage.report.figures`)."""
    started = time.perf_counter()
    folder = RunFolder.at(run_dir)
    content = gather(
        folder.root,
        settings.top_tokens,
        settings.tail_metric,
        workers=settings.workers,
        embed_mb=settings.embed_mb,
        progress=progress,
    )
    folder.report_assets.mkdir(parents=True, exist_ok=True)
    images = [_write_image(folder.report_assets / f"{f.name}.png", f.png) for f in content.figures]
    html = _write(folder.report_html, render_html(content))
    markdown = _write(folder.report_markdown, render_markdown(content))
    seconds = time.perf_counter() - started
    return StageResult(
        stage="report",
        summary=f"wrote {html} and {markdown} ({len(content.rows)} fits) in {seconds:.1f} s",
        outputs=(html, markdown, *images),
        seconds=seconds,
        counts={"fits": len(content.rows), "figures": len(images)},
    )


def _write_image(path: Path, png: bytes) -> Path:
    """report.md's copy of a figure; the drawn ones are there already (a linked one has no
    bytes here), the others are written when they changed."""
    if png and (not path.is_file() or path.read_bytes() != png):
        path.write_bytes(png)
    return path


def _write(path: Path, text: str) -> Path:
    """Atomic: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

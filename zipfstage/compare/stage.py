"""`run_compare`: load and check every run, then write compare.html, .md, .json and plots/."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from zipfstage.compare.content import OVERLAY_DEPTHS, CompareContent, gather
from zipfstage.compare.drawing import draw_all
from zipfstage.compare.html import render_html
from zipfstage.compare.jsonout import to_json
from zipfstage.compare.markdown import render_markdown
from zipfstage.compare.runs import load_runs
from zipfstage.errors import ZipfstageError
from zipfstage.plotting.style import FORMATS, extensions

HTML_NAME = "compare.html"
MARKDOWN_NAME = "compare.md"
JSON_NAME = "compare.json"
PLOTS_DIR = "plots"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CompareResult:
    html: Path
    markdown: Path
    json: Path
    figures: list[Path]
    labels: list[str]
    seconds: float


@dataclass
class PreparedCompare:
    """Every run checked and every table gathered; nothing written yet."""

    content: CompareContent
    out: Path
    exts: tuple[str, ...]


def prepare_compare(
    run_dirs: list[Path],
    out: Path,
    metrics: list[str] | None = None,
    labels: list[str] | None = None,
    fmt: str = "png",
) -> PreparedCompare:
    """Check every run (a zipfstage store, with data, with fits as new as the store) and the
    options; a problem is a ZipfstageError naming the run, raised before anything is written."""
    if fmt not in FORMATS:
        raise ZipfstageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ZipfstageError(f"--out {out} exists and is not a directory")
    runs = load_runs([Path(d) for d in run_dirs], labels)
    if any(out.resolve() == run.directory.resolve() for run in runs):
        raise ZipfstageError("--out must not be one of the compared runs (its plots/ would mix)")
    return PreparedCompare(gather(runs, metrics), out, extensions(fmt))


def write_compare(
    prepared: PreparedCompare, dpi: int = 150, progress: Progress | None = None
) -> CompareResult:
    """Draw the figures and write compare.html, compare.md and compare.json."""
    started = time.perf_counter()
    content, out = prepared.content, prepared.out
    total = len(content.metrics) * (1 + len(OVERLAY_DEPTHS)) + int(bool(content.paper))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZipfstageError(f"cannot write to {out}: {exc.strerror}") from None
    draw_all(content, out / PLOTS_DIR, prepared.exts, dpi, tick)
    html = _write(out / HTML_NAME, render_html(content))
    markdown = _write(out / MARKDOWN_NAME, render_markdown(content, out))
    data = _write(out / JSON_NAME, to_json(content, out))
    files = [path for figure in content.figures for path in figure.files]
    labels = [run.label for run in content.runs]
    return CompareResult(html, markdown, data, files, labels, time.perf_counter() - started)


def run_compare(
    run_dirs: list[Path],
    out: Path,
    metrics: list[str] | None = None,
    labels: list[str] | None = None,
    fmt: str = "png",
    dpi: int = 150,
    progress: Progress | None = None,
) -> CompareResult:
    """Compare fitted runs by relative depth; reads records and summaries, never a model."""
    started = time.perf_counter()
    result = write_compare(prepare_compare(run_dirs, out, metrics, labels, fmt), dpi, progress)
    return replace(result, seconds=time.perf_counter() - started)


def _write(path: Path, text: str) -> Path:
    """Atomic: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

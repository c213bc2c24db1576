"""`zipfstage report`: valid self-contained HTML and Markdown with every fit, figure and verdict."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.plot_helpers import FAILED_REASON, write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.errors import ZipfstageError
from zipfstage.formatting import fmt_number
from zipfstage.records import Comparison, FitRecord
from zipfstage.report.content import choose_tail_metric
from zipfstage.report.escape import markdown_code, markdown_text
from zipfstage.report.tokens import top_indices
from zipfstage.report.verdict import alternatives_verdict, clauset_verdict
from zipfstage.store import open_store
from zipfstage.store.layout import tokenizer_path

runner = CliRunner()
POINTS = ("embed", "layer_1", "layer_3")
SCALARS = ("rms", "max_abs", "kurtosis")
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report_run")
    make_synthetic_store(out, n_batches=2, batch_size=4, seq_len=128)
    write_synthetic_fits(out)
    result = runner.invoke(app, ["report", "--out", str(out), "--top-tokens", "7"])
    assert result.exit_code == 0, result.output
    return out


class Collector(HTMLParser):
    """Checks tag balance and collects table rows and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: list[str | None] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        for key in ("href", "src"):
            if values.get(key):
                self.links.append(values[key] or "")
        if tag == "table":
            self._table.append(values.get("id"))
        if tag == "tr" and self._table and self._table[-1]:
            self.rows.setdefault(self._table[-1] or "", []).append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "table":
            self._table.pop()
        if tag in ("td", "th") and self._cell is not None:
            if self._table and self._table[-1] and self.rows.get(self._table[-1] or ""):
                self.rows[self._table[-1] or ""][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Collector:
    collector = Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    collector.close()
    assert not collector.errors, collector.errors[:5]
    assert collector.stack == [], collector.stack
    return collector


def test_report_html_is_valid_self_contained_and_complete(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    page = parse(report_dir / "report.html")
    body = page.rows["fit-table"][1:]  # first row is the header
    assert sorted((r[0], r[1]) for r in body) == sorted((p, m) for p in POINTS for m in SCALARS)
    channel_rows = page.rows["channel-table"][1:]
    reader = open_store(report_dir)
    assert len(channel_rows) == len(POINTS) * len(reader.channel_indices)
    # every image is embedded PNG; nothing points to the network
    assert len(page.images) == 3 + 3 + 9  # dashboards + heatmap, depth overlays, one CCDF per fit
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert not [link for link in page.links if not link.startswith(("data:", "#"))]
    assert "http://" not in html and "https://" not in html


def test_report_verdicts_follow_clauset_and_the_likelihood_ratios(report_dir: Path) -> None:
    rows = {(r[0], r[1]): r for r in parse(report_dir / "report.html").rows["fit-table"][1:]}
    assert rows[("embed", "rms")][10].startswith("power law plausible (p = 0.42")
    assert rows[("layer_1", "rms")][10].startswith("power law ruled out (p = 0.03")
    assert rows[("layer_1", "rms")][11].startswith("lognormal favoured, significant")
    assert rows[("embed", "max_abs")][10] == "not tested (run fit --bootstrap N)"
    assert rows[("embed", "max_abs")][11] == (
        "power law favoured over lognormal, exponential; inconclusive vs stretched exp., "
        "truncated power law"
    )
    assert rows[("layer_3", "kurtosis")][10] == f"no fit: {FAILED_REASON}"
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "Clauset" in html and "R &gt; 0 favours the power law" in html


def test_report_markdown_has_every_row_and_its_images(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    for point in POINTS:
        for metric in SCALARS:
            cells = (
                rf"^\| {re.escape(markdown_text(point))} \| {re.escape(markdown_text(metric))} \|"
            )
            assert re.search(cells, text, re.M), (point, metric)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 15
    for image in images:
        assert (report_dir / image).read_bytes().startswith(b"\x89PNG")


#: one row of a tail card's "one by one" table: rank, token, id, position, value
TAIL_ROW = re.compile(
    r"<tr><td class='num'>(\d+)</td><td><code>[^<]*</code></td><td class='num'>(-?\d+)</td>"
    r"<td class='num'>(\d+)</td><td class='num'>([^<]+)</td></tr>"
)


def test_tail_tokens_are_the_largest_values_with_their_positions(report_dir: Path) -> None:
    reader = open_store(report_dir)
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    section = text[text.index("id='tails'") :]
    assert "max_abs" in section and "at position 0" in section
    assert "tokens are shown by id" in text
    for point in POINTS:
        values = reader.metric(point, "max_abs")
        top = np.argsort(values)[::-1][:7]
        card = section[section.index(f"<div id='tail-{point}'>") :]
        card = card[: card.index("</details>")]
        shown = [(int(r), int(i), int(p), v) for r, i, p, v in TAIL_ROW.findall(card)]
        expected = [
            (rank, int(reader.token_ids()[row]), int(reader.positions()[row]), fmt_number(v, 4))
            for rank, (row, v) in enumerate(zip(top, values[top], strict=True), start=1)
        ]
        assert shown == expected, point


def test_top_indices_uses_the_largest_finite_values() -> None:
    values = np.array([1.0, np.nan, 7.0, 3.0, np.inf, 7.0, -2.0], dtype=np.float32)
    top = top_indices(values, 3).tolist()
    assert sorted(top[:2]) == [2, 5] and top[2] == 3  # NaN and inf are skipped
    assert top_indices(values, 50).tolist()[-1] == 6
    assert top_indices(np.array([np.nan, np.nan]), 5).size == 0


def test_report_decodes_tokens_with_the_saved_tokenizer(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    make_synthetic_store(tmp_path, n_batches=1, batch_size=2, seq_len=64)
    write_synthetic_fits(tmp_path)
    shutil.copytree(tokenizer_dir, tokenizer_path(tmp_path))
    result = runner.invoke(
        app, ["report", "--out", str(tmp_path), "--top-tokens", "3", "--tail-metric", "rms"]
    )
    assert result.exit_code == 0, result.output
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    reader = open_store(tmp_path)
    best = int(np.nanargmax(reader.metric("embed", "rms")))
    decoded = str(tokenizer.decode([int(reader.token_ids()[best])]))
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "shown by id" not in markdown and "Top <code>rms</code>" in markdown
    visible = decoded.replace("\n", "\\n").replace("\t", "\\t")
    if visible.strip(" ") != visible:
        visible = visible.replace(" ", "\u2423")
    assert f"| 1 | {markdown_code(visible)} |" in markdown


def test_unknown_tail_metric_is_an_error_naming_the_stores_metrics(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=1, batch_size=1, seq_len=64)
    write_synthetic_fits(tmp_path)
    result = runner.invoke(app, ["report", "--out", str(tmp_path), "--tail-metric", "foo"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "'foo' is not in the store" in message
    assert "rms, max_abs, kurtosis" in message and "Traceback" not in result.output
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()


def test_the_default_tail_metric_falls_back_when_the_store_lacks_it() -> None:
    assert choose_tail_metric("max_abs", ["rms", "gini"]) == "rms"
    assert choose_tail_metric("gini", ["rms", "gini"]) == "gini"
    with pytest.raises(ZipfstageError, match="it has: rms, gini"):
        choose_tail_metric("foo", ["rms", "gini"])


def _fit(p: float | None, comparisons: dict[str, tuple[float, float]] | None = None) -> FitRecord:
    return FitRecord(
        point="x",
        metric="m",
        status="ok",
        alpha=2.2,
        xmin=1.0,
        p_value=p,
        comparisons={k: Comparison(k, r, q, {}) for k, (r, q) in (comparisons or {}).items()},
    )


def test_verdict_rules() -> None:
    assert clauset_verdict(_fit(0.1)).kind == "plausible"
    assert clauset_verdict(_fit(0.0999)).kind == "ruled-out"
    assert clauset_verdict(_fit(None)).text == "not tested (run fit --bootstrap N)"
    assert clauset_verdict(FitRecord("x", "m", "failed", reason="why")).text == "no fit: why"
    # a significant alternative outranks one with a larger but insignificant R
    both = {"lognormal": (-1.0, 0.05), "exponential": (-3.0, 0.5)}
    assert alternatives_verdict(_fit(0.5, both)).text.startswith("lognormal favoured, significant")
    tie = {"lognormal": (-1e-13, 1.0), "exponential": (0.3, 0.7)}
    assert alternatives_verdict(_fit(0.5, tie)).text == (
        "inconclusive: no significant difference vs lognormal, exponential"
    )
    assert alternatives_verdict(_fit(0.5, {"lognormal": (-1.0, 0.05)})).kind == "alternative"
    won = {"lognormal": (2.0, 0.01), "exponential": (9.0, 0.001)}
    assert alternatives_verdict(_fit(0.5, won)).kind == "power-law"
    mixed = {"lognormal": (0.5, 0.6), "exponential": (9.0, 0.001)}
    assert alternatives_verdict(_fit(0.5, mixed)).text == (
        "power law favoured over exponential; inconclusive vs lognormal"
    )


SORT_PROBE = """<script>
var table = document.getElementById("fit-table");
table.querySelectorAll("th")[2].click();
document.body.setAttribute("data-sorted", Array.from(table.tBodies[0].rows).map(
  function (r) { return r.cells[2].dataset.value; }).join(","));
</script></body>"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    """Debian's headless Chromium; CI (CI=true) installs it, so there a missing one fails."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but `chromium` is missing: .ci/run installs Debian's chromium")
        pytest.skip("Chromium is not installed (Debian package `chromium`)")
    return found


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    command = [chromium(), *CHROMIUM_FLAGS, profile, "--enable-logging=stderr", "--v=0", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console_errors = [
        line
        for line in done.stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)
    ]
    assert not console_errors, console_errors
    return done


def test_report_opens_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "probe.html"
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", SORT_PROBE), encoding="utf-8")
    done = run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert "fit-table" in done.stdout and "data:image/png;base64," in done.stdout
    sorted_attr = re.search(r'data-sorted="([^"]*)"', done.stdout)
    assert sorted_attr is not None, "the sort script did not run"
    alphas = [float(v) for v in sorted_attr.group(1).split(",") if v]
    assert len(alphas) == 8 and alphas == sorted(alphas)


def test_report_renders_its_figures_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1400,4000",
        (report_dir / "report.html").as_uri(),
    )
    # a blank 1400x4000 page compresses to a few kB; text alone to some tens of kB
    assert shot.stat().st_size > 150_000
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1400)
    # the figures are the only large saturated areas (heatmap cells, data and fit lines)
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 0.3).mean() > 0.02
    rows = np.flatnonzero((saturation > 0.3).mean(axis=1) > 0.3)
    assert rows.size > 100, "no wide block of figure pixels: the dashboards did not render wide"


def test_dashboards_span_the_page_and_the_summary_links_to_figures(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    wide = re.findall(r"<figure id='fig-([^']+)' class='wide'>", html)
    assert wide == ["alpha_dashboard", "slope_dashboard", "channel_heatmap"]
    assert "<div class='figs wide'><figure id='fig-alpha_dashboard'" in html
    assert "<figure id='fig-ccdf__embed__rms'><img" in html  # the CCDFs stay in the grid
    summary = html[html.index("<section id='summary'>") : html.index("<section id='run'>")]
    targets = re.findall(r"<a href='#([^']+)'>", summary)
    assert targets and all(f"id='{target}'" in html for target in targets)
    assert "fig-ccdf__embed__rms" in targets  # the heaviest plausible tail (p = 0.42)
    text = re.sub(r"<[^>]+>", "", summary)
    assert "Of 9 (point, metric) pairs, 8 have a power-law fit: 1 plausible" in text
    assert "1 ruled out" in text and "6 untested" in text and "1 could not be fitted" in text
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "[figure](report_files/ccdf__embed__rms.png)" in markdown


def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        chromium()

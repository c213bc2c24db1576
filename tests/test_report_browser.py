"""report.html in a real browser (headless Chromium): the summary is there, and the fit table's
filter applies the `#filter=` fragment on load, in the self-contained page and in the large-run
page whose figures are linked from report_files/. Skipped only where Chromium is not installed."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
runner = CliRunner()


class _Rows(HTMLParser):
    """The fit table's rows as (point, metric, hidden), the filter's count, the images' sources."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: list[tuple[str, str, bool]] = []
        self.sources: list[str] = []
        self.in_count = False
        self.count = ""
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.ids.add(found.get("id") or "")
        if tag == "table":
            self.table = found.get("id")
        elif tag == "tr" and self.table == "fit-table" and "data-point" in found:
            self.rows.append(
                (found["data-point"] or "", found["data-metric"] or "", "hidden" in found)
            )
        elif tag == "img":
            self.sources.append(found.get("src") or "")
        self.in_count = found.get("id") == "filter-count"

    def handle_endtag(self, tag: str) -> None:
        self.in_count = False

    def handle_data(self, data: str) -> None:
        if self.in_count:
            self.count += data


def dump_dom(page: Path, fragment: str, profile: Path) -> _Rows:
    assert CHROMIUM is not None
    url = page.resolve().as_uri() + fragment
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={profile}", "--dump-dom", url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = _Rows()
    parsed.feed(done.stdout)
    return parsed


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser_run")
    make_synthetic_store(out, n_batches=1, batch_size=2, seq_len=128)
    write_synthetic_fits(out)
    return out


def _report(out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["report", "--out", str(out), "--top-tokens", "3", *extra])
    assert result.exit_code == 0, result.output
    return out / "report.html"


def _shown(rows: _Rows) -> set[tuple[str, str]]:
    return {(point, metric) for point, metric, hidden in rows.rows if not hidden}


def test_the_filter_fragment_applies_on_load(run_dir: Path, tmp_path: Path) -> None:
    page = _report(run_dir)
    everything = dump_dom(page, "", tmp_path)
    assert {"summary", "fits", "fit-filter"} <= everything.ids
    assert len(everything.rows) == 9 and _shown(everything) == {
        (p, m) for p, m, _ in everything.rows
    }
    assert everything.count == "showing 9 of 9 fits"
    assert all(src.startswith("data:image/png;base64,") for src in everything.sources)
    plausible = dump_dom(page, "#filter=metric:rms;verdict:plausible", tmp_path)
    assert _shown(plausible) == {("embed", "rms")}
    assert plausible.count == "showing 1 of 9 fits"
    listed = dump_dom(
        page, "#filter=point:embed,layer_3;site:embed,resid_post;metric:kurtosis", tmp_path
    )
    assert _shown(listed) == {("embed", "kurtosis"), ("layer_3", "kurtosis")}


def test_a_large_report_links_its_ccdfs_and_still_filters(run_dir: Path, tmp_path: Path) -> None:
    page = _report(run_dir, "--embed-mb", "0")
    dom = dump_dom(page, "#filter=verdict:ruled-out", tmp_path)
    assert "summary" in dom.ids
    assert _shown(dom) == {("layer_1", "rms")}
    linked = [src for src in dom.sources if not src.startswith("data:")]
    assert len(linked) == 8  # 9 CCDFs, the one the summary names embedded
    assert all((run_dir / src).is_file() for src in linked)
    html = page.read_text()
    assert "ccdf__embed__rms" in html and html.count("data:image/png;base64,") > 3

"""The report's summary, its tail tokens grouped by token, and Markdown that renders no markup."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.records import FitRecord
from zipfstage.report import names
from zipfstage.report.escape import markdown_code, markdown_path, markdown_text
from zipfstage.report.summary import Tally, heaviest_tails, summarize, tail_findings, tally
from zipfstage.report.tokens import PointTail, TailToken, group_tokens, tail_tokens
from zipfstage.store import StorePlan, StoreWriter, create_store, open_store, store_path
from zipfstage.store.layout import SCHEMA_VERSION, tokenizer_path
from zipfstage.store.writer import finalize_store

runner = CliRunner()
ATTACK = "<img src=x onerror=alert(1)>"


def _fit(point: str, alpha: float | None, p: float | None, status: str = "ok") -> FitRecord:
    return FitRecord(point=point, metric="rms", status=status, alpha=alpha, xmin=1.0, p_value=p)


HAND_MADE = [
    _fit("a", 2.5, 0.5),  # plausible
    _fit("b", 1.8, 0.1),  # plausible, the heaviest
    _fit("c", 1.2, 0.01),  # ruled out: never a "heaviest plausible tail"
    _fit("d", 1.5, None),  # untested
    FitRecord(point="e", metric="rms", status="failed", reason="too few values"),
    FitRecord.missing("f", "rms"),
]


def test_tally_counts_unfitted_metrics_apart_from_failed_fits() -> None:
    assert tally(HAND_MADE) == Tally(plausible=2, ruled_out=1, untested=1, failed=1, not_fitted=1)
    assert tally(HAND_MADE).total == 6 and tally(HAND_MADE).fitted == 4
    first = summarize(HAND_MADE, [], "rms")[0]
    assert first.text.startswith(
        "Of 6 (point, metric) pairs, 4 have a power-law fit: 2 plausible by Clauset's test"
    )
    assert "1 ruled out" in first.text and "1 untested" in first.text
    assert "1 could not be fitted" in first.text and "1 not fitted yet" in first.text
    assert first.figure == names.ALPHA_DASHBOARD


def test_heaviest_tails_are_the_smallest_alphas_among_plausible_fits() -> None:
    assert [f.point for f in heaviest_tails(HAND_MADE)] == ["b", "a"]
    findings = summarize(HAND_MADE, [], "rms")
    assert findings[1].text.startswith("The heaviest plausible tail is rms at b: \u03b1 = 1.80")
    assert findings[1].figure == names.ccdf_name("b", "rms")
    assert findings[2].text.startswith("The second heaviest plausible tail is rms at a")
    assert len(findings) == 3


def test_without_plausible_fits_the_summary_confirms_no_heavy_tail() -> None:
    untested = [_fit("d", 1.5, None), _fit("g", 3.0, None), _fit("c", 1.2, 0.01)]
    findings = summarize(untested, [], "rms")
    assert "0 plausible" in findings[0].text and "--bootstrap 100" in findings[0].text
    assert findings[1].text.startswith("No fit is a plausible power law yet")
    assert "1.20 (rms at c)" in findings[1].text
    assert findings[1].figure == names.ccdf_name("c", "rms")


def _token(rank: int, token_id: int, position: int, value: float) -> TailToken:
    return TailToken(rank, token_id, "<s>" if token_id == 1 else f"t{token_id}", position, value)


def test_tail_findings_tell_one_token_from_a_spread_tail() -> None:
    bos = [_token(i, 1, 0, 100.0 - i) for i in range(1, 9)] + [_token(9, 5, 4, 3.0)]
    after = [_token(i, 7, 2, 50.0 - i) for i in range(1, 7)] + [_token(7, 8, 3, 1.0)]
    spread = [_token(i, 10 + i, i, 10.0 - i) for i in range(1, 10)]
    tails = [
        PointTail("embed", bos, "", group_tokens(bos), group_tokens(after)),
        PointTail("last", spread, "", group_tokens(spread), group_tokens(spread)),
    ]
    concentrated, spread_out = tail_findings(tails, "max_abs")
    assert concentrated.text == (
        "At embed, one token makes the extreme max_abs tail: the first token \u201c<s>\u201d "
        "(position 0) holds 89% of the top 9 values; after position 0, the token \u201ct7\u201d "
        "leads (86%)."
    )
    assert spread_out.text.startswith("At last, the top 9 max_abs values are spread")
    assert "no token holds more than 11%" in spread_out.text
    assert concentrated.section == spread_out.section == "tails"


def _bos_store(out: Path) -> Path:
    """4 sequences of 8 tokens: id 1 (BOS) at position 0 holds the largest values, then id 7
    (at positions 1 and 3), then everything else."""
    plan = StorePlan(batch_size=4, seq_len=8, planned_batches=1)
    attributes = {
        "schema_version": SCHEMA_VERSION,
        "config": {},
        "config_hash": "bos",
        "model": {"name": "bos"},
        "data": {"source": "bos"},
        "versions": {},
        "point_layers": {"embed": -1},
    }
    path = store_path(out)
    create_store(path, plan, ["embed"], ["max_abs", "rms"], [], attributes)
    ids = np.tile([1, 7, 2, 7, 3, 4, 5, 6], 4)
    positions = np.tile(np.arange(8), 4)
    rows = np.arange(32)
    values = np.where(ids == 1, 100.0 + rows, np.where(ids == 7, 50.0 + rows / 100, rows / 100))
    StoreWriter(path).write_batch(
        0,
        ids,
        positions,
        {("embed", "max_abs"): values.astype(np.float32), ("embed", "rms"): values[::-1]},
    )
    finalize_store(path, 1, {})
    return path


def test_tail_tokens_grouped_with_and_without_position_zero(tmp_path: Path) -> None:
    _bos_store(tmp_path)
    (tail,) = tail_tokens(open_store(tmp_path), "max_abs", 6, None)
    assert [t.token_id for t in tail.tokens] == [1, 1, 1, 1, 7, 7]
    bos, seven = tail.groups
    assert (bos.token_id, bos.count, bos.positions, bos.share) == (1, 4, (0,), 4 / 6)
    assert bos.max_value == pytest.approx(124.0)  # row 24 is the last sequence's first token
    assert (seven.count, seven.positions, seven.share) == (2, (1, 3), 2 / 6)
    assert seven.max_value == pytest.approx(50.27)
    (later,) = tail.groups_after_first
    assert (later.token_id, later.count, later.share) == (7, 6, 1.0)
    assert later.positions == (1, 3) and later.max_value == pytest.approx(50.27)


def hostile(token_id: int) -> str:
    """What token `token_id` decodes to: an HTML tag, or Markdown code, a table pipe, a link."""
    if token_id % 2 == 0:
        return f"<img src=x onerror=alert({token_id})>"
    return f"``{token_id}`|*_[y](z)"


def _word_level_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    vocab = {hostile(i): i for i in range(500)}
    folder.mkdir(parents=True)
    Tokenizer(WordLevel(vocab, unk_token=hostile(0))).save(str(folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report whose every token, model name and data source is markup."""
    out = tmp_path_factory.mktemp("hostile")
    make_synthetic_store(out, n_batches=1, batch_size=2, seq_len=64)
    root = zarr.open_group(store_path(out), mode="r+", zarr_format=3)
    info = dict(root.attrs["zipfstage"])
    info["model"] = {**info["model"], "name": f"evil{ATTACK}`model`"}
    info["data"] = {**info["data"], "source": "[click](javascript:alert(1)) *x* | y"}
    root.attrs["zipfstage"] = info
    write_synthetic_fits(out)
    _word_level_tokenizer(tokenizer_path(out))
    # 128 rows, 500 tokens listed per point: every token of the store is in the report
    result = runner.invoke(app, ["report", "--out", str(out), "--top-tokens", "500"])
    assert result.exit_code == 0, result.output
    return out


def test_markdown_escapes_tokens_model_and_data_names(hostile_report: Path) -> None:
    text = (hostile_report / "report.md").read_text(encoding="utf-8")
    assert "<img" not in text and "``" not in text
    assert "[click](javascript" not in text and "`model`" not in text
    assert markdown_text(f"evil{ATTACK}`model`") in text
    assert markdown_text("[click](javascript:alert(1)) *x* | y") in text
    for token_id in set(open_store(hostile_report).token_ids().tolist()):
        assert hostile(token_id) not in text
        assert markdown_code(hostile(token_id)) in text, token_id
    # the only raw HTML tags left are the report's own <code> spans
    assert set(re.findall(r"<(/?[a-zA-Z]+)", text)) <= {"code", "/code"}


def test_html_escapes_the_same_text(hostile_report: Path) -> None:
    html = (hostile_report / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html and f"evil{ATTACK}" not in html
    assert "evil&lt;img src=x onerror=alert(1)&gt;`model`" in html
    assert "&lt;img src=x onerror=alert(" in html


def test_markdown_text_escapes_every_special() -> None:
    assert markdown_text(ATTACK) == "&lt;img src=x onerror=alert(1)&gt;"
    assert markdown_text("a`b|c*d_e[f]g\\h") == "a\\`b\\|c\\*d\\_e\\[f\\]g\\\\h"
    assert markdown_text("x & y\nz") == "x &amp; y z"
    assert (
        markdown_path("report_files/ccdf__a (b)__m.png") == "report_files/ccdf__a%20%28b%29__m.png"
    )

"""From a real fit to the report's verdict table: fit_power_law -> stored JSON record ->
FitRecord.from_record -> the HTML fit table, with no hand-made record on the way."""

from __future__ import annotations

import json

import numpy as np

from tests.test_report import Collector
from zipfstage.fitting import fit_power_law
from zipfstage.fitting.bootstrap import round_to_bfloat16
from zipfstage.formatting import fmt_number
from zipfstage.records import FitRecord
from zipfstage.report.content import fit_rows
from zipfstage.report.html import _fit_table
from zipfstage.report.markdown import _table as markdown_table
from zipfstage.report.summary import summarize


def rendered_row(fit: FitRecord) -> list[str]:
    """The fit table's one row for a fit stored and read back as `fit` and `report` do."""
    stored = json.loads(json.dumps(fit.to_record(), allow_nan=False))
    back = FitRecord.from_record("layer_1", "max_abs", stored)
    rows = fit_rows(["layer_1"], ["max_abs"], {"layer_1": {"max_abs": back}})
    page = Collector()
    page.feed(_fit_table(rows, "fit-table"))
    (cells,) = page.rows["fit-table"][1:]
    return cells


def test_real_fits_reach_the_verdict_table() -> None:
    rng = np.random.default_rng(4)
    pareto = rng.pareto(1.5, 4000) + 1.0
    lognormal = rng.lognormal(0.0, 1.0, 4000)
    plausible = fit_power_law(pareto, bootstrap=19, seed=1)
    ruled_out = fit_power_law(lognormal, xmin=0.5, bootstrap=19, seed=1)
    assert plausible.p_value is not None and plausible.p_value >= 0.1
    assert ruled_out.p_value is not None and ruled_out.p_value < 0.1
    for fit, word in ((plausible, "plausible"), (ruled_out, "ruled out")):
        cells = rendered_row(fit)
        assert cells[:2] == ["layer_1", "max_abs"]
        assert cells[2] == f"{fit.alpha:.2f}"
        assert cells[5] == f"{fit.n_tail:,}"
        assert cells[10].startswith(f"power law {word} (p = {fmt_number(fit.p_value, 2)}")
    lognormal_test = ruled_out.comparisons["lognormal"]
    assert lognormal_test.R is not None and lognormal_test.R < 0 and lognormal_test.p < 0.1
    assert rendered_row(ruled_out)[11].startswith("lognormal favoured, significant")


def test_a_steep_bf16_tail_shows_its_binned_alpha_in_table_and_summary() -> None:
    """Pareto alpha 40 rounded to bf16: the continuous alpha runs high, the binned one is beside
    it in the HTML and markdown tables, and the summary names the fit."""
    rng = np.random.default_rng(8)
    steep = round_to_bfloat16(3.3 * rng.random(20_000) ** (-1.0 / 39.0))
    fit = fit_power_law(steep, xmin=float(steep[steep >= 3.3].min()), compare=False)
    assert fit.alpha is not None and fit.alpha_binned is not None
    assert fit.binning_moves_alpha and abs(fit.alpha_binned - 40.0) < abs(fit.alpha - 40.0) / 4
    expected = f"{fit.alpha:.2f} (binned {fit.alpha_binned:.2f})"
    assert rendered_row(fit)[2] == expected
    back = FitRecord.from_record("layer_1", "max_abs", fit.to_record())
    rows = fit_rows(["layer_1"], ["max_abs"], {"layer_1": {"max_abs": back}})
    assert f"| {expected} |" in "\n".join(markdown_table(rows))
    (finding,) = [f for f in summarize([back], [], "max_abs") if "binned" in f.text]
    assert "1 of 1 fits on the bf16/fp16 grid" in finding.text
    assert f"max_abs at layer_1 \u03b1 = {fit.alpha_binned:.2f}" in finding.text
    shallow = fit_power_law(round_to_bfloat16(rng.pareto(1.5, 4000) + 1.0), compare=False)
    assert shallow.alpha_binned is not None and not shallow.binning_moves_alpha
    assert rendered_row(shallow)[2] == f"{shallow.alpha:.2f}"

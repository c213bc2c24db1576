"""ablate's plain parts without a model: targets, controls, plans, ablate.json's rows, the figure,
the report section and the compare column."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from zipfstage.ablate.plan import Choice, choose_targets, plan_interventions
from zipfstage.ablate.results import control_summary
from zipfstage.ablate.spec import Target
from zipfstage.ablate.targets import (
    Massive,
    ModelShape,
    control_target,
    outlier_channels,
    parse_target,
    super_weight_targets,
)
from zipfstage.compare.rows import ablate_cell
from zipfstage.errors import ZipfstageError
from zipfstage.plotting.ablate import ablate_figure
from zipfstage.report.interventions_section import interventions_html, interventions_markdown

SHAPE = ModelShape(n_layers=30, hidden_size=576)
OUTLIERS: dict[str, Any] = {
    "dettmers_channels": [
        {"channel": 507, "site": "resid_post"},
        {"channel": 308, "site": "resid_post"},
        {"channel": 1200, "site": "mlp_act"},  # d_ff wide: not a residual channel
    ],
    "super_weights": [
        {"layer": 2, "row": 507, "column": 90, "mlp_out_max": 700.0},
        {"layer": 11, "row": 507, "column": 1229, "mlp_out_max": 24881.0},
    ],
    "points": {},
}
MASSIVE = Massive(11, (507,), 24926.0, "test")


def test_parse_target() -> None:
    assert parse_target("massive", SHAPE) == "massive"
    assert parse_target("layer_11:507,247,507", SHAPE) == Target("channels", (11,), (507, 247))
    with pytest.raises(ZipfstageError, match="layers 0-29, not layer 30"):
        parse_target("layer_30:1", SHAPE)
    with pytest.raises(ZipfstageError, match="channels 0-575, not 576"):
        parse_target("layer_3:576", SHAPE)
    with pytest.raises(ZipfstageError, match="is not one of"):
        parse_target("layer_3:", SHAPE)


def test_targets_from_the_analysis() -> None:
    targets, notes = choose_targets(Choice("auto", None, None), OUTLIERS, MASSIVE, SHAPE)
    kinds = [t.kind for t in targets]
    assert kinds == ["massive", "dettmers", "super_weight", "super_weight"]
    assert targets[1].channels == (507, 308) and targets[1].layers == tuple(range(30))
    assert targets[2].weights[0].layer == 11  # the largest mlp_out spike first
    limited, notes = choose_targets(Choice("auto", None, None, 1), OUTLIERS, MASSIVE, SHAPE)
    assert [t.kind for t in limited].count("super_weight") == 1
    assert "1 of 2 super-weight candidates" in " ".join(notes)
    with pytest.raises(ZipfstageError, match="no massive activation"):
        choose_targets(Choice("massive", None, None), OUTLIERS, None, SHAPE)
    assert len(super_weight_targets(OUTLIERS, SHAPE)) == 2


def test_controls_avoid_every_named_channel_and_differ_by_seed() -> None:
    exclude = outlier_channels(OUTLIERS, MASSIVE)
    assert {507, 308, 1200} <= exclude
    target = Target("dettmers", tuple(range(30)), (507, 308))
    drawn = [control_target(target, seed, exclude, (576, 1536)) for seed in range(5)]
    assert all(len(c.channels) == 2 and not set(c.channels) & exclude for c in drawn)
    assert all(c.layers == target.layers for c in drawn)
    assert len({c.channels for c in drawn}) == 5
    assert control_target(target, 3, exclude, (576, 1536)) == drawn[3]  # seeded
    narrow = Target("channels", (0,), (7,))  # 10 channels, 0-6 named: only 8 and 9 are left
    assert {control_target(narrow, s, set(range(7)), (10, 10)).channels for s in range(8)} == {
        (8,), (9,),
    }  # fmt: skip
    weights = super_weight_targets(OUTLIERS, SHAPE)[0]
    control = control_target(weights, 0, exclude, (576, 1536))
    assert control.weights[0].layer == 11 and control.weights[0].row not in exclude
    with pytest.raises(ZipfstageError, match="cannot draw 3 control channels"):
        control_target(Target("channels", (0,), (0, 1, 2)), 0, set(range(4)), (5, 5))


def test_plan_has_the_baseline_first_and_controls_beside_each_target() -> None:
    targets, _ = choose_targets(Choice("auto", None, None), OUTLIERS, MASSIVE, SHAPE)
    planned = plan_interventions(
        targets, Choice("auto", None, None), (MASSIVE, 100.0, 5), set(), (576, 1536)
    )
    names = [i.name for i in planned]
    assert names[0] == "baseline" and planned[0].is_baseline
    assert [n for n in names if not n.startswith("control")][1:4] == [
        "massive zero", "massive mean", "massive typical",
    ]  # fmt: skip
    assert sum(1 for i in planned if i.control_of == "massive mean") == 5
    massive = next(i for i in planned if i.name == "massive zero")
    assert massive.rule.kind == "carriers" and massive.rule.threshold == pytest.approx(12463.0)
    assert len(planned) == 1 + (3 + 1 + 2) * 6


def test_control_summary_matches_numpy() -> None:
    ratios = [1.0, 1.5, 0.9, 1.2, 1.1]
    summary = control_summary(ratios)
    assert summary["ratio_mean"] == pytest.approx(np.mean(ratios))
    assert summary["ratio_std"] == pytest.approx(np.std(ratios, ddof=1))
    assert (summary["ratio_min"], summary["ratio_max"], summary["n"]) == (0.9, 1.5, 5)


def result(name: str = "<img src=x onerror=alert(1)>") -> dict[str, Any]:
    row = {"control_of": None, "tokens": "carriers", "mode": "zero", "weights": []}
    return {
        "eval": {"tokens": 2048, "source": "pydoc", "skipped_tokens": 8192},
        "massive": {"layer": 11, "channels": [507], "value": 2.5e4},
        "notes": ["a note"],
        "interventions": [
            {**row, "name": "baseline", "kind": "baseline", "target": "none", "ratio": 1.0,
             "perplexity": 25.7, "tokens": None, "mode": None},
            {**row, "name": "massive zero", "kind": "massive", "target": name, "ratio": 3.4e5,
             "perplexity": 8.7e6, "controls": control_summary([1.0, 1.02]),
             "massive_after": {"layers": [11, 12], "channels": [507], "max_abs": [[0.0], [3.0]]}},
            {**row, "name": "control of massive zero (seed 0)", "kind": "massive",
             "target": "x", "ratio": 1.0, "perplexity": 25.7, "control_of": "massive zero"},
            {**row, "name": "control of massive zero (seed 1)", "kind": "massive",
             "target": "x", "ratio": 1.02, "perplexity": 26.2, "control_of": "massive zero"},
        ],
    }  # fmt: skip


def test_report_section_escapes_and_summarises_controls() -> None:
    html = interventions_html(result(), None, [])
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "massive zero" in html and "control of" not in html  # controls summarised
    assert "1.01 \u00b1 0.0141" in html
    markdown = "\n".join(interventions_markdown(result("a | b `c`"), None, [], "report_files"))
    assert "## Interventions" in markdown and "a \\| b" in markdown
    assert "run `zipfstage ablate" in interventions_html(None, None, [])


def test_compare_cell() -> None:
    data = result()
    assert ablate_cell(data) == "3.40e+05 / \u2014"
    assert ablate_cell(None) == "\u2014"


def test_figure_draws_every_intervention_with_its_controls(tmp_path: Path) -> None:
    figure = ablate_figure(result("layer 11 ch. 507"))
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["massive zero\nlayer 11 ch. 507, on carriers"]
    xs = sorted(float(x) for line in ax.lines for x in np.atleast_1d(line.get_xdata()))
    assert 3.4e5 in xs and 1.02 in xs and 1.0 in xs
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    json.dumps(result())

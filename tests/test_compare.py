"""`zipfstage compare`: runs placed by relative depth, verdict shares from the records, labels,
refusals, self-contained and escaped output, and no metric array read beyond the CCDF depths."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.plot_helpers import write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from tests.tiny_models import tiny_config
from zipfstage.cli import app
from zipfstage.compare import demo as compare_demo
from zipfstage.compare import run_compare
from zipfstage.compare.depth import nearest, parse_point, place, relative_depth
from zipfstage.compare.runs import load_runs
from zipfstage.report.escape import markdown_text
from zipfstage.store import StoreReader, open_store
from zipfstage.store.checksums import COLUMNS_ATTR
from zipfstage.store.fits import write_fit
from zipfstage.store.layout import CHECKSUMS
from zipfstage.store.writer import update_attributes

runner = CliRunner()
EVIL = "<img src=x onerror=alert(1)> `rm -rf` |x|"
SCALARS = ["rms", "max_abs", "kurtosis"]


def synthetic_run(
    out: Path, points: tuple[str, ...], n_layers: int, name: str, n_batches: int = 2, **attrs: Any
) -> Path:
    make_synthetic_store(out, points=points, n_batches=n_batches, seed=n_layers)
    info = open_store(out).info
    update_attributes(
        out / "store.zarr",
        {"model": {**info["model"], "name": name, "n_layers": n_layers}, **attrs},
    )
    write_synthetic_fits(out, failed=None)
    return out


def rename_point(out: Path, old: str, new: str) -> None:
    """Turn a synthetic point into a sub-layer site (`layer_4.mlp_act`): folders and attributes."""
    store = out / "store.zarr"
    for group in ("metrics", "fits"):
        if (store / group / old).exists():
            (store / group / old).rename(store / group / new)
    checksums = zarr.open_array(store / CHECKSUMS, mode="r+")  # the columns name the arrays
    prefix = f"metrics/{old}/"
    columns = checksums.attrs[COLUMNS_ATTR]
    renamed = [f"metrics/{new}/{c[len(prefix) :]}" if c.startswith(prefix) else c for c in columns]
    checksums.attrs[COLUMNS_ATTR] = renamed
    info = open_store(out).info
    points = [new if p == old else p for p in info["points"]]
    update_attributes(store, {"points": points})


def write_outliers(out: Path, n_layers: int, peaks: dict[str, float]) -> None:
    """An outliers.json by hand, following OUTLIERS_CONTRACT.md (only what compare reads)."""
    points = {}
    for name, top1 in peaks.items():
        layer, site = parse_point(name) or (-1, "embed")
        points[name] = {
            "layer": layer,
            "site": site,
            "width": 64,
            "n_tokens": 1024,
            "massive": {
                "top": [top1, top1 / 2, top1 / 4],
                "top_channels": [1, 2, 3],
                "median_global": 0.05,
                "median_token": 0.06,
                "ratio": top1 / 0.05,
                "criterion": top1 > 100 and top1 / 0.05 >= 1000,
            },
        }
    payload = {"schema": 1, "store_id": "synthetic", "n_layers": n_layers, "points": points}
    (out / "outliers.json").write_text(json.dumps(payload))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("compare_runs")
    shallow = synthetic_run(base / "shallow", ("embed", "layer_1", "layer_3"), 4, "tiny-4L")
    deep = synthetic_run(base / "deep", ("embed", "layer_2", "layer_4", "layer_7"), 8, EVIL)
    write_outliers(shallow, 4, {"embed": 3.0, "layer_1": 250.0, "layer_3": 40.0})
    write_outliers(deep, 8, {"embed": 2.0, "layer_2": 90.0, "layer_4": 400.0, "layer_7": 60.0})
    return [shallow, deep]


@pytest.fixture(scope="module")
def compared(runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compared")
    args = ["compare", *map(str, runs), "--out", str(out), "--format", "both", "--dpi", "50"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_point_names_parse_and_place_by_relative_depth() -> None:
    assert parse_point("embed") == (-1, "embed")
    assert parse_point("layer_14") == (14, "resid_post")
    assert parse_point("layer_14.mlp_act") == (14, "mlp_act")
    assert parse_point("layer_x") is None and parse_point("lm_head") is None
    assert relative_depth(-1, 12) == 0.0 and relative_depth(11, 12) == 1.0
    assert relative_depth(9, 36) == pytest.approx(9 / 35)
    places = [place(p, 8) for p in ("embed", "layer_2", "layer_4.mlp_act", "layer_7")]
    assert [p.depth for p in places if p] == pytest.approx([0, 2 / 7, 4 / 7, 1])
    stream = [p for p in places if p]
    # a sub-layer site is never the residual-stream point nearest a depth
    assert (pick := nearest(stream, 0.5)) is not None and pick.point == "layer_2"


def test_compare_json_places_runs_by_relative_depth(compared: Path, runs: list[Path]) -> None:
    data = json.loads((compared / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["tiny-4L", EVIL]
    depths = {r["label"]: {p["point"]: p["depth"] for p in r["points"]} for r in data["runs"]}
    assert depths["tiny-4L"] == pytest.approx({"embed": 0, "layer_1": 1 / 3, "layer_3": 1})
    assert depths[EVIL] == pytest.approx(
        {"embed": 0, "layer_2": 2 / 7, "layer_4": 4 / 7, "layer_7": 1}
    )
    assert data["metrics"] == SCALARS
    # compare reports each run's depth and model as its store records them
    assert [r["n_layers"] for r in data["runs"]] == [4, 8]
    assert [r["model"]["name"] for r in data["runs"]] == ["tiny-4L", EVIL]
    fits = zarr.open_group(runs[1] / "store.zarr", mode="r")
    for entry in data["alpha"]["rms"][EVIL]:
        record = fits[f"fits/{entry['point']}/rms"].attrs["record"]
        assert entry["alpha"] == pytest.approx(record["alpha"])
        assert entry["alpha_ci"] == pytest.approx(record["alpha_ci"])
    assert data["ccdf_overlay_points"]["rms"]["middle"] == {"tiny-4L": "layer_1", EVIL: "layer_4"}


def test_verdict_shares_are_computed_from_the_records(compared: Path, runs: list[Path]) -> None:
    data = json.loads((compared / "compare.json").read_text())
    for run_dir, run in zip(runs, data["runs"], strict=True):
        root = zarr.open_group(run_dir / "store.zarr", mode="r")
        for metric in SCALARS:
            p_values = [
                root[f"fits/{p['point']}/{metric}"].attrs["record"]["p_value"]
                for p in run["points"]
            ]
            tested = [p for p in p_values if p is not None]
            cell = data["verdicts"][run["label"]][metric]
            assert cell["plausible"] == sum(p >= 0.1 for p in tested)
            assert cell["ruled_out"] == sum(p < 0.1 for p in tested)
            assert cell["untested"] == len(p_values) - len(tested)
            expected = cell["plausible"] / len(tested) if tested else None
            assert cell["share"] == expected
    # the synthetic fits: embed/rms plausible (p 0.42), layer_1 or layer_2 / rms ruled out (0.03)
    assert data["verdicts"]["tiny-4L"]["rms"]["share"] == 0.5
    assert data["verdicts"]["tiny-4L"]["kurtosis"]["share"] is None


def test_massive_table_follows_the_outliers_contract(compared: Path) -> None:
    data = json.loads((compared / "compare.json").read_text())
    rows = {row["label"]: row for row in data["massive"]}
    assert rows["tiny-4L"]["peak_point"] == "layer_1"
    assert rows["tiny-4L"]["peak_depth"] == pytest.approx(1 / 3)
    assert rows["tiny-4L"]["top"] == [250.0, 125.0, 62.5] and rows["tiny-4L"]["criterion"]
    assert rows[EVIL]["peak_point"] == "layer_4" and rows[EVIL]["layers"] == 8
    assert rows[EVIL]["ratio"] == pytest.approx(400 / 0.05)
    assert "plots/massive_by_depth.png" in data["figures"]


def test_every_figure_is_written_in_each_format(compared: Path) -> None:
    plots = compared / "plots"
    for ext in ("png", "pdf"):
        for metric in SCALARS:
            assert (plots / "alpha_by_depth" / f"{metric}.{ext}").stat().st_size > 1000
            for which in ("first", "middle", "last"):
                assert (plots / "ccdf_overlay" / f"{metric}__{which}.{ext}").stat().st_size > 1000
        assert (plots / "massive_by_depth").with_suffix(f".{ext}").stat().st_size > 1000


def test_svg_format_and_metric_selection(runs: list[Path], tmp_path: Path) -> None:
    result = run_compare(runs, tmp_path, metrics=["kurtosis"], fmt="svg", dpi=40)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in result.figures)
    assert names == [
        "plots/alpha_by_depth/kurtosis.svg",
        "plots/ccdf_overlay/kurtosis__first.svg",
        "plots/ccdf_overlay/kurtosis__last.svg",
        "plots/ccdf_overlay/kurtosis__middle.svg",
        "plots/massive_by_depth.svg",
    ]
    assert "<svg" in (tmp_path / names[0]).read_text()


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def test_html_is_self_contained_and_escapes_model_names(compared: Path) -> None:
    html = (compared / "compare.html").read_text(encoding="utf-8")
    parser = Links()
    parser.feed(html)
    assert parser.links and all(
        link.startswith("data:image/png;base64,") or link.startswith("#") for link in parser.links
    )
    assert parser.tags.count("img") == 3 * 4 + 1  # alpha + 3 overlays per metric, massive
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "verdict-table" in html and "massive-table" in html


def test_markdown_makes_untrusted_text_inert(compared: Path) -> None:
    text = (compared / "compare.md").read_text(encoding="utf-8")
    assert EVIL not in text and "<img" not in text
    assert markdown_text(EVIL) in text
    assert markdown_text(EVIL) == ("&lt;img src=x onerror=alert(1)&gt; \\`rm -rf\\` \\|x\\|")
    rows = [line for line in text.splitlines() if line.startswith(f"| {markdown_text(EVIL)} |")]
    cells = [len(re.split(r"(?<!\\)\|", row)) - 2 for row in rows]
    assert cells == [8, 1 + len(SCALARS)]  # the runs and verdict rows: escaped pipes split nothing
    assert "](plots/alpha_by_depth/rms.png)" in text


def test_labels_name_what_differs(tmp_path: Path) -> None:
    points = ("embed", "layer_1")
    base = synthetic_run(tmp_path / "base", points, 4, "same-model")
    longer = synthetic_run(tmp_path / "longer", points, 4, "same-model", n_batches=3)
    info = open_store(base).info
    half = synthetic_run(tmp_path / "half", points, 4, "same-model")
    update_attributes(
        half / "store.zarr", {"model": {**open_store(half).info["model"], "dtype": "bfloat16"}}
    )
    other = synthetic_run(tmp_path / "other", points, 4, "same-model")
    update_attributes(
        other / "store.zarr", {"data": {**info["data"], "source": "stdlib-docstrings"}}
    )
    labels = [r.label for r in load_runs([base, longer])]
    assert labels == ["same-model \u00b7 1,024 tokens", "same-model \u00b7 1,536 tokens"]
    labels = [r.label for r in load_runs([base, half, other])]
    assert labels == [
        "same-model \u00b7 synthetic \u00b7 float32",
        "same-model \u00b7 synthetic \u00b7 bfloat16",
        "same-model \u00b7 stdlib-docstrings \u00b7 float32",
    ]
    again = synthetic_run(tmp_path / "again", points, 4, "same-model")  # same settings, new store
    twins = [r.label for r in load_runs([base, again])]
    assert twins == ["same-model (base)", "same-model (again)"]
    named = [r.label for r in load_runs([base, half], ["a", "b"])]
    assert named == ["a", "b"]


def _refused(args: list[str], out: Path) -> str:
    result = runner.invoke(app, ["compare", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
    return result.output


def test_refuses_a_dir_that_is_not_a_run(runs: list[Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    output = _refused([str(runs[0]), str(tmp_path / "empty")], tmp_path / "out")
    assert "not a zipfstage run" in output


def test_refuses_a_run_without_fits(runs: list[Path], tmp_path: Path) -> None:
    make_synthetic_store(tmp_path / "unfitted", n_batches=1)
    output = _refused([str(runs[0]), str(tmp_path / "unfitted")], tmp_path / "out")
    assert "no fits" in output and "unfitted" in output


def test_refuses_a_run_with_stale_fits(runs: list[Path], tmp_path: Path) -> None:
    stale = synthetic_run(tmp_path / "stale", ("embed", "layer_1"), 4, "stale")
    record = zarr.open_group(stale / "store.zarr", mode="r")["fits/embed/rms"].attrs["record"]
    write_fit(stale, "embed", "rms", {**record, "store_tokens": 10}, "test")
    output = _refused([str(runs[0]), str(stale)], tmp_path / "out")
    assert "made from 10 tokens" in output and "stale" in output


def test_refuses_unknown_metric_and_wrong_label_count(runs: list[Path], tmp_path: Path) -> None:
    assert "entropy" in _refused([*map(str, runs), "--metrics", "entropy"], tmp_path / "o1")
    assert "--labels" in _refused([*map(str, runs), "--labels", "a,b,c"], tmp_path / "o2")


def test_reads_no_metric_array_but_the_three_ccdf_depths(
    runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[tuple[str, str]] = []
    original = StoreReader._read

    def spy(self: StoreReader, name: str) -> np.ndarray:
        read.append((self.path.parent.name, name))
        return original(self, name)

    monkeypatch.setattr(StoreReader, "_read", spy)
    run_compare(runs, tmp_path, metrics=["rms", "kurtosis"], dpi=30)
    metric_reads = [(run, name) for run, name in read if name.startswith("metrics/")]
    expected = {
        (run, f"metrics/{point}/{metric}")
        for run, chosen in (
            ("shallow", ("embed", "layer_1", "layer_3")),
            ("deep", ("embed", "layer_4", "layer_7")),
        )
        for point in chosen
        for metric in ("rms", "kurtosis")
    }
    assert set(metric_reads) == expected and len(metric_reads) == len(expected)
    assert not any("max_abs" in name for _, name in read)


def _tiny(kind: str, folder: Path, tokenizer_dir: Path, **overrides: int) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_config(kind)
    settings = {k: v for k, v in base.to_dict().items() if k != "layer_types"}
    config = type(base).from_dict({**settings, **overrides})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


def test_tiny_models_of_different_depth_and_width(
    tiny_llama: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    deeper = _tiny("qwen3", tmp_path / "qwen3", tokenizer_dir, num_hidden_layers=6, hidden_size=64)
    small = [
        "--data",
        "pydoc",
        "--max-tokens",
        "512",
        "--seq-len",
        "64",
        "--batch-size",
        "4",
        "--points",
        "all",
        "--metrics",
        "rms,max_abs",
        "--channels",
        "0",
        "-q",
    ]
    dirs = []
    for name, model in (("llama", tiny_llama), ("qwen3", deeper)):
        out = tmp_path / name
        assert (
            runner.invoke(
                app, ["collect", "--model", str(model), "--out", str(out), *small]
            ).exit_code
            == 0
        )
        fitted = runner.invoke(app, ["fit", "--out", str(out), "--workers", "1"])
        assert fitted.exit_code == 0, fitted.output
        dirs.append(out)
    result = runner.invoke(
        app, ["compare", *map(str, dirs), "--out", str(tmp_path / "cmp"), "--dpi", "40"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    layers = [r["n_layers"] for r in data["runs"]]
    assert layers == [4, 6]
    for run in data["runs"]:
        depth = {p["point"]: p["depth"] for p in run["points"]}
        last = run["n_layers"] - 1
        assert depth == pytest.approx(
            {"embed": 0.0, **{f"layer_{i}": i / last for i in range(last + 1)}}
        )
    assert data["ccdf_overlay_points"]["rms"]["last"] == dict.fromkeys(
        [r["label"] for r in data["runs"]], None
    ) | {r["label"]: f"layer_{r['n_layers'] - 1}" for r in data["runs"]}
    models = [r["model"] for r in data["runs"]]
    assert [(m["model_type"], m["n_layers"], m["hidden_size"]) for m in models] == [
        ("llama", 4, open_store(dirs[0]).info["model"]["hidden_size"]),
        ("qwen3", 6, 64),
    ]
    assert models[1]["architecture"].startswith("Qwen3")


def test_compare_demo_runs_two_corpora_and_two_dtypes(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(compare_demo.DEMO_COLLECT, "model", str(tiny_llama))
    config = tmp_path / "small.yaml"
    config.write_text(
        "collect:\n  channels: 0\n  seq_len: 64\n  batch_size: 4\n  metrics: [rms, max_abs]\n"
        "fit:\n  workers: 1\nplot:\n  dpi: 40\n"
    )
    out = tmp_path / "demo"
    args = ["demo", "--compare", "--out", str(out), "--config", str(config), "--max-tokens", "512"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare" / "compare.json").read_text())
    labels = [r["label"] for r in data["runs"]]
    name = data["runs"][0]["model"]["name"]
    assert labels == [
        f"{name} \u00b7 pydoc \u00b7 float32",
        f"{name} \u00b7 stdlib-docstrings \u00b7 float32",
        f"{name} \u00b7 pydoc \u00b7 bfloat16",
    ]
    assert (out / "compare" / "compare.html").is_file()
    # A bootstrap interval wholly above alpha (percentile intervals can lie to one side of their
    # estimate): the demo's path, resumed, must still draw it and show all three runs.
    one_sided = _shift_interval_above_alpha(out / "runs" / "pydoc-bfloat16", "layer_3", "rms")
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    data = json.loads((out / "compare" / "compare.json").read_text())
    stored = next(p for p in data["alpha"]["rms"][labels[2]] if p["point"] == "layer_3")
    assert stored["alpha_ci"] == pytest.approx(one_sided)
    html = (out / "compare" / "compare.html").read_text(encoding="utf-8")
    assert all(markdown_text(label) in html or label in html for label in labels)
    assert (out / "compare" / "plots" / "alpha_by_depth" / "rms.png").stat().st_size > 1000


def _shift_interval_above_alpha(run: Path, point: str, metric: str) -> list[float]:
    """Rewrite one stored fit so its alpha interval lies above alpha, keeping its input hash
    (so a resumed fit keeps it)."""
    from zipfstage.store.fits import read_fit_curves, read_fit_records, read_input_hash

    record = read_fit_records(run)[point][metric]
    interval = [record["alpha"] + 0.2, record["alpha"] + 0.5]
    record["alpha_ci"] = interval
    input_hash = read_input_hash(run, point, metric)
    assert input_hash is not None
    write_fit(run, point, metric, record, input_hash, read_fit_curves(run, point, metric))
    return interval


def test_sub_layer_sites_compare_site_with_site(tmp_path: Path) -> None:
    a = synthetic_run(tmp_path / "a", ("embed", "layer_1", "layer_3", "layer_2"), 4, "m-a")
    rename_point(a, "layer_2", "layer_1.mlp_act")
    b = synthetic_run(tmp_path / "b", ("embed", "layer_3", "layer_7", "layer_6"), 8, "m-b")
    rename_point(b, "layer_6", "layer_7.mlp_act")
    run_compare([a, b], tmp_path / "out", metrics=["rms"], dpi=30)
    data = json.loads((tmp_path / "out" / "compare.json").read_text())
    placed = {
        label: {e["point"]: (e["site"], e["depth"]) for e in entries}
        for label, entries in data["alpha"]["rms"].items()
    }
    assert placed["m-a"]["layer_1.mlp_act"] == ("mlp_act", pytest.approx(1 / 3))
    assert placed["m-b"]["layer_7.mlp_act"] == ("mlp_act", 1.0)
    assert placed["m-b"]["layer_3"] == ("resid_post", pytest.approx(3 / 7))
    # the overlays compare the residual stream only, never a sub-layer site at the same depth
    assert data["ccdf_overlay_points"]["rms"]["last"] == {"m-a": "layer_3", "m-b": "layer_7"}


def test_outliers_reader_keeps_only_the_contract_it_needs(tmp_path: Path) -> None:
    from zipfstage.compare.outliers import read_outliers

    assert read_outliers(tmp_path, 4) == (None, None)  # no file: no rows, no note
    (tmp_path / "outliers.json").write_text("{not json")
    outliers, why = read_outliers(tmp_path, 4)
    assert outliers is None and why is not None and "outliers.json" in why
    (tmp_path / "outliers.json").write_text(
        json.dumps(
            {
                "points": {
                    "layer_2": {"massive": {"top": [500.0, None, float("nan")], "ratio": 10}},
                    "layer_1.mlp_out": {"layer": 1, "site": "mlp_out", "massive": {"top": [7]}},
                    "embed": {"width": 3},
                }
            }
        )
    )
    outliers, why = read_outliers(tmp_path, 5)
    assert why is None and outliers is not None
    rows = {m.point: m for m in outliers.points}
    assert set(rows) == {"layer_2", "layer_1.mlp_out"}
    assert rows["layer_2"].top == (500.0,) and rows["layer_2"].depth == 0.5
    assert rows["layer_2"].median is None and rows["layer_2"].criterion is None
    assert rows["layer_1.mlp_out"].site == "mlp_out" and rows["layer_1.mlp_out"].depth == 0.25

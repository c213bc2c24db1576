"""`zipfstage plot`: every figure type, every format, valid images, fits drawn where they belong."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import special, stats
from typer.testing import CliRunner

from tests.plot_helpers import FAILED_REASON, write_synthetic_fits
from tests.synthetic_store import make_synthetic_store
from zipfstage.cli import app
from zipfstage.plotting.ccdf import ccdf_figure
from zipfstage.plotting.dashboards import dashboard_figure
from zipfstage.plotting.manifest import MANIFEST_NAME
from zipfstage.plotting.multi_layer import multi_layer_figure
from zipfstage.plotting.samples import SampleCache
from zipfstage.plotting.selection import named_fits, selected_points, spread_indices
from zipfstage.plotting.tail_models import alternative_ccdf, power_law_ccdf
from zipfstage.plotting.thinning import KEEP_TOP, sorted_sample, thin_ranks
from zipfstage.records import FitRecord, FitTable, lookup, parse_records
from zipfstage.store import open_store
from zipfstage.store.fits import read_fit_records, write_fit

runner = CliRunner()
POINTS = ("embed", "layer_1", "layer_3")
SCALARS = ("rms", "max_abs", "kurtosis")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plot_run")
    make_synthetic_store(out, n_batches=2, batch_size=4, seq_len=128)
    write_synthetic_fits(out)
    return out


def expected_figures(
    ext: str,
    points: tuple[str, ...] = POINTS,
    metrics: tuple[str, ...] = SCALARS,
    kinds: tuple[str, ...] = ("rank_frequency", "ccdf", "diagnostics"),
) -> set[str]:
    names = {f"alpha_dashboard.{ext}", f"slope_dashboard.{ext}", f"channel_heatmap.{ext}"}
    for metric in metrics:
        names.add(f"multi_layer/{metric}.{ext}")
        for point in points:
            for kind in kinds:
                names.add(f"{kind}/{point}__{metric}.{ext}")
    return names


def written(plots: Path) -> set[str]:
    """The figures under plots/ (not the manifest that remembers their inputs)."""
    return {
        str(p.relative_to(plots))
        for p in plots.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }


def assert_valid(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000, path
    if path.suffix == ".png":
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 50 and image.size[1] > 50
            low, high = image.convert("L").getextrema()
            assert float(low) < float(high), f"{path} is blank"  # type: ignore[arg-type]
    elif path.suffix == ".pdf":
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    elif path.suffix == ".svg":
        root = ET.fromstring(data)
        assert root.tag.endswith("svg") and len(root) > 0
    else:
        raise AssertionError(f"unexpected file {path}")


def test_plot_writes_every_figure_as_valid_png(run_dir: Path) -> None:
    result = runner.invoke(app, ["plot", "--out", str(run_dir), "--dpi", "40", "--figures", "all"])
    assert result.exit_code == 0, result.output
    plots = run_dir / "plots"
    assert written(plots) == expected_figures("png")
    for path in plots.rglob("*.png"):
        assert_valid(path)


@pytest.mark.parametrize(
    ("fmt", "exts"), [("pdf", ("pdf",)), ("svg", ("svg",)), ("both", ("png", "pdf"))]
)
def test_plot_formats(tmp_path: Path, fmt: str, exts: tuple[str, ...]) -> None:
    make_synthetic_store(tmp_path, n_batches=1, batch_size=2, seq_len=128)
    write_synthetic_fits(tmp_path)
    result = runner.invoke(
        app,
        [
            "plot",
            "--out",
            str(tmp_path),
            "--format",
            fmt,
            "--dpi",
            "40",
            "--points",
            "embed",
            "--metrics",
            "rms,channel_wise",
            "--figures",
            "all",
        ],
    )
    assert result.exit_code == 0, result.output
    plots = tmp_path / "plots"
    assert written(plots) == set().union(
        *(expected_figures(ext, ("embed",), ("rms",)) for ext in exts)
    )
    for name in written(plots):
        assert_valid(plots / name)


@pytest.mark.parametrize("command", ["plot", "report"])
def test_missing_fits_say_run_fit_first(tmp_path: Path, command: str) -> None:
    make_synthetic_store(tmp_path, n_batches=1, batch_size=1, seq_len=64)
    result = runner.invoke(app, [command, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "zipfstage fit" in result.output and "first" in result.output
    assert "Traceback" not in result.output


def test_unknown_point_is_a_usage_error(run_dir: Path) -> None:
    result = runner.invoke(app, ["plot", "--out", str(run_dir), "--points", "layer_99"])
    assert result.exit_code == 2
    assert "layer_99" in result.output


def test_thinning_keeps_the_whole_extreme_tail_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    raw = rng.pareto(1.5, size=1_000_000).astype(np.float32)
    raw[:10] = [np.nan, np.inf, -1.0, 0.0, -np.inf, 0.0, np.nan, -2.0, 0.0, 0.0]
    sample = sorted_sample(raw)
    kept = np.sort(raw[np.isfinite(raw) & (raw > 0)])[::-1]
    assert sample.n == kept.size and sample.n_dropped == 10
    assert len(sample.values) < 8_000
    np.testing.assert_array_equal(sample.values[:KEEP_TOP], kept[:KEEP_TOP])
    assert np.all(np.diff(sample.values) <= 0) and sample.ccdf[-1] == 1.0
    np.testing.assert_array_equal(sample.values, sorted_sample(raw).values)
    assert sample.values[-1] == kept[-1]
    small = thin_ranks(100)
    np.testing.assert_array_equal(small, np.arange(100))


def test_tail_models_match_closed_forms() -> None:
    xmin, x = 2.0, np.geomspace(2.0, 500.0, 40)
    np.testing.assert_allclose(power_law_ccdf(x, 2.5, xmin), (x / xmin) ** -1.5)
    lognormal = stats.lognorm(s=0.8, scale=np.exp(0.3))
    np.testing.assert_allclose(
        alternative_ccdf("lognormal", {"mu": 0.3, "sigma": 0.8}, x, xmin),
        lognormal.sf(x) / lognormal.sf(xmin),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        alternative_ccdf("exponential", {"lambda": 0.1}, x, xmin),
        np.exp(-0.1 * (x - xmin)),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        alternative_ccdf("stretched_exponential", {"lambda": 0.2, "beta": 0.6}, x, xmin),
        np.exp((0.2 * xmin) ** 0.6 - (0.2 * x) ** 0.6),
        rtol=1e-9,
    )
    # alpha = 2: Gamma(-1, z) = E_2(z) / z
    lam = 0.05
    gamma = special.expn(2, lam * x) / (lam * x)
    np.testing.assert_allclose(
        alternative_ccdf("truncated_power_law", {"alpha": 2.0, "lambda": lam}, x, xmin),
        gamma / gamma[0],
        rtol=1e-6,
    )


def _line(ax, prefix: str):  # type: ignore[no-untyped-def]
    return next(line for line in ax.get_lines() if line.get_label().startswith(prefix))


def test_ccdf_draws_the_fit_scaled_to_the_tail_share(run_dir: Path) -> None:
    reader = open_store(run_dir)
    table, _ = parse_records(read_fit_records(run_dir))
    fit = lookup(table, "embed", "rms")
    sample = SampleCache(reader).get("embed", "rms")
    fig = ccdf_figure(sample, fit)
    ax = fig.axes[0]
    data = _line(ax, "data")
    assert max(data.get_xdata()) == float(np.nanmax(reader.metric("embed", "rms")))
    law = _line(ax, "power law")
    assert law.get_xdata()[0] == pytest.approx(fit.xmin)
    assert fit.n_tail is not None and fit.n is not None
    assert law.get_ydata()[0] == pytest.approx(fit.n_tail / fit.n)
    assert _line(ax, "best alternative").get_label().endswith("truncated power law")
    text = "\n".join(t.get_text() for a in fig.axes for t in a.texts)
    assert f"n_tail = {fit.n_tail:,}" in text and "p = 0.42 (bootstrap)" in text
    assert "KS D" in text and "95% CI" in text


def test_unfitted_point_is_drawn_without_a_fit_and_says_why(run_dir: Path) -> None:
    reader = open_store(run_dir)
    table, channels = parse_records(read_fit_records(run_dir))
    fit = lookup(table, "layer_3", "kurtosis")
    cache = SampleCache(reader)
    fig = ccdf_figure(cache.get("layer_3", "kurtosis"), fit)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["data (N = 1,024)"]
    text = " ".join(t.get_text() for a in fig.axes for t in a.texts).replace("\n", " ")
    assert FAILED_REASON in text
    rows = [(p, cache.get(p, "kurtosis"), lookup(table, p, "kurtosis")) for p in POINTS]
    legend = multi_layer_figure("kurtosis", rows).axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()][-1] == "layer_3  (no fit)"
    dash = dashboard_figure("alpha", list(POINTS), list(reader.metrics), table, channels)
    cells = [t.get_text() for t in dash.axes[0].texts]
    assert cells.count("no fit") == 1
    assert f"{lookup(table, 'embed', 'rms').alpha:.2f}" in cells
    assert len(cells) == len(POINTS) * 4  # three scalar metrics + the channel median


def _small_run(out: Path) -> Path:
    make_synthetic_store(out, n_batches=1, batch_size=2, seq_len=128)
    write_synthetic_fits(out)
    return out


def _plot(out: Path, *extra: str) -> str:
    result = runner.invoke(app, ["plot", "--out", str(out), "--dpi", "30", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_default_draws_the_summary_figures_and_ccdfs(tmp_path: Path) -> None:
    out = _small_run(tmp_path)
    _plot(out)
    assert written(out / "plots") == expected_figures("png", kinds=("ccdf",))


def test_a_pool_draws_the_same_figures(tmp_path: Path) -> None:
    out = _small_run(tmp_path)
    _plot(out, "--workers", "2", "--figures", "all")
    plots = out / "plots"
    assert written(plots) == expected_figures("png")
    for path in plots.rglob("*.png"):
        assert_valid(path)


def _mtimes(plots: Path) -> dict[str, int]:
    return {name: (plots / name).stat().st_mtime_ns for name in written(plots)}


def test_unchanged_figures_are_kept_and_a_changed_fit_redraws_its_own(tmp_path: Path) -> None:
    out = _small_run(tmp_path)
    plots = out / "plots"
    _plot(out)
    before = _mtimes(plots)
    assert "(0 drawn" in _plot(out).replace("\n", " ")
    assert _mtimes(plots) == before
    record = read_fit_records(out)["layer_1"]["max_abs"]
    write_fit(out, "layer_1", "max_abs", {**record, "alpha": record["alpha"] + 0.3}, "changed")
    _plot(out)
    after = _mtimes(plots)
    changed = {name for name in before if after[name] != before[name]}
    depends = {"alpha_dashboard", "slope_dashboard", "channel_heatmap", "multi_layer/max_abs"}
    assert changed == {f"{name}.png" for name in depends | {"ccdf/layer_1__max_abs"}}
    _plot(out, "--force")
    assert all(_mtimes(plots)[name] != after[name] for name in after)


def _table(alphas: list[float | None]) -> tuple[list[str], FitTable]:
    points = ["embed"] + [f"layer_{i}" for i in range(len(alphas) - 1)]
    table: FitTable = {}
    for point, alpha in zip(points, alphas, strict=True):
        fit = FitRecord(
            point=point, metric="rms", status="ok", alpha=alpha, xmin=1.0, n_tail=9, p_value=0.5
        )
        table[point] = {"rms": fit if alpha else FitRecord.missing(point, "rms")}
    return points, table


def test_the_selection_per_metric_is_bounded_and_spans_depth_and_alpha() -> None:
    alphas: list[float | None] = [3.0 + 0.01 * i for i in range(40)]
    alphas[17], alphas[23], alphas[5] = 1.5, 9.0, None
    points, table = _table(alphas)
    chosen = selected_points(points, "rms", table, per_metric=6)
    assert len(chosen) == 6 and chosen == sorted(chosen, key=points.index)
    assert {points[17], points[23], points[0], points[-1]} <= set(chosen)
    assert selected_points(points[:4], "rms", table, per_metric=6) == points[:4]
    assert sorted(spread_indices(37)) == list(range(37)) and spread_indices(37)[:3] == [0, 36, 18]
    fits = [lookup(table, p, "rms") for p in points]
    assert [f.point for f in named_fits(fits)] == [points[17], points[0], points[1]]


def test_a_depth_overlay_of_many_points_has_a_colour_bar_not_a_legend_per_point() -> None:
    rng = np.random.default_rng(0)
    points = ["embed"] + [f"layer_{i}.{s}" for i in range(9) for s in ("attn_out", "mlp_act")]
    points += [f"layer_{i}" for i in range(9, 32)]
    curves = [
        (p, sorted_sample(rng.pareto(2.0, 500) + 1), FitRecord.missing(p, "rms")) for p in points
    ]
    fig = multi_layer_figure("rms", curves)
    assert len(fig.axes) == 2  # the plot and its depth colour bar
    legend = fig.axes[0].get_legend()
    assert legend is not None and legend.get_title().get_text() == "site"
    assert len(legend.get_texts()) < 10 < len(curves)

"""Sub-layer sites: every site's metrics against plain PyTorch hooks on the named modules (float64),
the residual algebra between sites, the early stop, MoE, point naming and bad input."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.test_metrics import reference
from tests.tiny_models import LAYERS, VOCAB, build_model, build_tiny_model
from zipfstage.cli import app
from zipfstage.collect.architecture import resolve_architecture
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.metrics import CHANNEL_WISE, METRICS
from zipfstage.collect.plan import channels_by_width, sample_channels
from zipfstage.collect.points import Point, resolve_points
from zipfstage.collect.reducer import MetricReducer
from zipfstage.collect.sites import LAYOUTS, layout_for, site_hook
from zipfstage.errors import ZipfstageError
from zipfstage.point_names import SITES, block_order, parse_point, point_name
from zipfstage.records import FitRecord
from zipfstage.report.by_site import by_site_html, by_site_markdown, site_grid
from zipfstage.report.content import FitRow
from zipfstage.report.verdict import alternatives_verdict, clauset_verdict
from zipfstage.store import open_store

runner = CliRunner()
D_FF = 96

# The modules each site is read from, written out by hand per architecture (independent of
# zipfstage.collect.sites): (module path with {i}, "in" = its first input, "out" = output[0]).
_LLAMA = {
    "attn_out": ("model.layers.{i}.self_attn", "out"),
    "resid_mid": ("model.layers.{i}.post_attention_layernorm", "in"),
    "mlp_act": ("model.layers.{i}.mlp.down_proj", "in"),
    "mlp_out": ("model.layers.{i}.mlp", "out"),
    "resid_post": ("model.layers.{i}", "out"),
}
_NEOX = {
    "attn_out": ("gpt_neox.layers.{i}.attention", "out"),
    "resid_mid": ("gpt_neox.layers.{i}.post_attention_layernorm", "in"),
    "mlp_act": ("gpt_neox.layers.{i}.mlp.dense_4h_to_h", "in"),
    "mlp_out": ("gpt_neox.layers.{i}.mlp", "out"),
    "resid_post": ("gpt_neox.layers.{i}", "out"),
}
_OPT = {
    "attn_out": ("model.decoder.layers.{i}.self_attn", "out"),
    "resid_mid": ("model.decoder.layers.{i}.final_layer_norm", "in"),
    "mlp_act": ("model.decoder.layers.{i}.fc2", "in"),
    "mlp_out": ("model.decoder.layers.{i}.fc2", "out"),
    "resid_post": ("model.decoder.layers.{i}", "out"),
}
NAMED_MODULES: dict[str, dict[str, tuple[str, str]]] = {
    "llama": _LLAMA,
    "qwen3": _LLAMA,
    "mistral": _LLAMA,
    "gpt2": {
        "attn_out": ("transformer.h.{i}.attn", "out"),
        "resid_mid": ("transformer.h.{i}.ln_2", "in"),
        "mlp_act": ("transformer.h.{i}.mlp.c_proj", "in"),
        "mlp_out": ("transformer.h.{i}.mlp", "out"),
        "resid_post": ("transformer.h.{i}", "out"),
    },
    "opt": _OPT,
    "opt_post_ln": {
        **_OPT,
        "resid_mid": ("model.decoder.layers.{i}.self_attn_layer_norm", "in"),
    },
    "gpt_neox": {k: v for k, v in _NEOX.items() if k != "resid_mid"},
    "gpt_neox_serial": _NEOX,
    "qwen3_moe": {k: v for k, v in _LLAMA.items() if k != "mlp_act"},
}
#: pre-LN blocks, where resid_mid = input + attn_out and resid_post = resid_mid + mlp_out
PRE_LN = ["llama", "qwen3", "mistral", "gpt2", "opt", "gpt_neox_serial", "qwen3_moe"]


def _ids() -> torch.Tensor:
    return torch.randint(2, VOCAB, (2, 12), generator=torch.Generator().manual_seed(3))


def _reference_activations(model: torch.nn.Module, kind: str, ids: torch.Tensor) -> dict:
    """Every site of every layer from plain hooks on a float64 copy of the model."""
    model64 = copy.deepcopy(model).double()
    if hasattr(model64, "set_experts_implementation"):  # grouped_mm has no float64 kernel
        model64.set_experts_implementation("eager")
    captured: dict[str, np.ndarray] = {}
    handles = []
    for i in range(LAYERS):
        for site, (path, side) in NAMED_MODULES[kind].items():
            module = model64.get_submodule(path.format(i=i))
            name = point_name(i, site)

            def keep(tensor: torch.Tensor, name: str = name) -> None:
                captured[name] = tensor.detach().reshape(-1, tensor.shape[-1]).numpy().copy()

            if side == "in":
                handles.append(module.register_forward_pre_hook(lambda m, a, keep=keep: keep(a[0])))
            else:
                handles.append(
                    module.register_forward_hook(
                        lambda m, a, o, keep=keep: keep(o if isinstance(o, torch.Tensor) else o[0])
                    )
                )
    with torch.inference_mode():
        model64(ids)
    for handle in handles:
        handle.remove()
    return captured


def _zipfstage_metrics(
    model: torch.nn.Module, points: list[Point], ids: torch.Tensor, channels: dict[int, list[int]]
) -> dict[tuple[str, str], np.ndarray]:
    """The worker's own path: point hooks feeding the reducer, one host copy."""
    architecture = resolve_architecture(model)
    reducer = MetricReducer([*METRICS, CHANNEL_WISE], channels)
    with point_hooks(architecture, points, reducer), torch.inference_mode():
        run_until_last_point(architecture, ids)
    return reducer.to_host()


@pytest.mark.parametrize("kind", list(NAMED_MODULES))
def test_every_site_metric_matches_plain_hooks_in_float64(kind: str) -> None:
    model = build_model(kind)
    sites = list(NAMED_MODULES[kind])
    points = resolve_points(["all"], LAYERS, sites)
    d_ff = 4 * 48 if kind == "gpt2" else D_FF  # GPT-2's n_inner defaults to 4 * n_embd
    channels = channels_by_width({48, d_ff}, 16, seed=5)
    ids = _ids()
    got = _zipfstage_metrics(model, points, ids, channels)
    expected = _reference_activations(model, kind, ids)
    assert {name for name, _ in got} == {p.name for p in points}
    for point in points:
        if point.name == "embed":
            continue
        h = expected[point.name]
        assert h.shape[-1] == (d_ff if point.site == "mlp_act" else 48), point.name
        for metric in METRICS:
            with np.errstate(divide="ignore", invalid="ignore"):
                expected_values = reference(metric, h)
            # an undefined ratio (median |h| = 0 after a ReLU) is NaN in zipfstage, inf in numpy
            expected_values[~np.isfinite(expected_values)] = np.nan
            np.testing.assert_allclose(
                got[(point.name, metric)],
                expected_values,
                rtol=2e-3,
                err_msg=f"{kind} {point.name} {metric}",
            )
        sampled = h[:, channels[h.shape[-1]]]
        np.testing.assert_allclose(
            got[(point.name, CHANNEL_WISE)], sampled, rtol=2e-3, atol=2e-3 * np.abs(h).max()
        )


@pytest.mark.parametrize("kind", PRE_LN)
def test_sites_add_up_along_the_residual_stream(kind: str) -> None:
    """resid_mid = block input + attn_out, resid_post = resid_mid + mlp_out: the hooks sit where
    the names say, not merely on modules with those names."""
    model = build_model(kind)
    sites = [s for s in SITES if s != "mlp_act"]
    points = resolve_points(["all"], LAYERS, sites)
    raw: dict[str, torch.Tensor] = {}
    architecture = resolve_architecture(model)
    keep = lambda p, h: raw.__setitem__(p.name, h.clone())  # noqa: E731
    with torch.inference_mode(), point_hooks(architecture, points, keep):
        run_until_last_point(architecture, _ids())
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in raw.items()}
    for i in range(LAYERS):
        before = flat["embed" if i == 0 else f"layer_{i - 1}"]
        torch.testing.assert_close(
            flat[f"layer_{i}.resid_mid"], before + flat[f"layer_{i}.attn_out"], rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            flat[f"layer_{i}"],
            flat[f"layer_{i}.resid_mid"] + flat[f"layer_{i}.mlp_out"],
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize(
    ("kind", "last_module"), [("llama", "mlp.down_proj"), ("gpt2", "mlp.c_proj")]
)
def test_mlp_act_of_last_layer_stops_before_down_projection_and_lm_head(
    kind: str, last_module: str
) -> None:
    model = build_model(kind)
    architecture = resolve_architecture(model)
    ran: list[str] = []
    last = architecture.blocks[LAYERS - 1]
    last.get_submodule(last_module).register_forward_hook(lambda *a: ran.append("down"))
    last.register_forward_hook(lambda *a: ran.append("block"))
    model.get_output_embeddings().register_forward_hook(lambda *a: ran.append("lm_head"))
    seen: list[str] = []
    points = resolve_points(["last.mlp_act", "layer_1.attn_out"], LAYERS)
    with point_hooks(architecture, points, lambda p, h: seen.append(p.name)):
        run_until_last_point(architecture, _ids())
    assert seen == ["layer_1.attn_out", f"layer_{LAYERS - 1}.mlp_act"]
    assert ran == []


def test_moe_supports_residual_sites_and_refuses_mlp_act() -> None:
    model = build_model("qwen3_moe")
    architecture = resolve_architecture(model)
    points = resolve_points(["layer_1"], LAYERS, ["attn_out", "resid_mid", "mlp_out", "resid_post"])
    seen: dict[str, torch.Tensor] = {}
    with point_hooks(architecture, points, lambda p, h: seen.setdefault(p.name, h.clone())):
        run_until_last_point(architecture, _ids())
    assert sorted(seen) == ["layer_1", "layer_1.attn_out", "layer_1.mlp_out", "layer_1.resid_mid"]
    assert all(h.shape[-1] == architecture.hidden_size for h in seen.values())
    # the sites are the block's own pieces: the expert MLP's output completes the residual stream
    torch.testing.assert_close(seen["layer_1.resid_mid"] + seen["layer_1.mlp_out"], seen["layer_1"])
    assert not torch.allclose(seen["layer_1.attn_out"], seen["layer_1.mlp_out"])
    refused = resolve_points(["layer_1.mlp_act"], LAYERS)
    expected = r"qwen3_moe layer 1 has no site mlp_act: its MLP is a mixture of experts"
    with pytest.raises(ZipfstageError, match=expected), point_hooks(architecture, refused, print):
        pass


def test_point_names_resolve_and_sort_in_block_order() -> None:
    points = resolve_points(["middle", "embed", "all.mlp_out", "layer_-1.attn_out"], 4, ["all"])
    names = [p.name for p in points]
    assert names[:3] == ["embed", "layer_0.mlp_out", "layer_1.mlp_out"]
    assert names[3:8] == [
        "layer_2.attn_out",
        "layer_2.resid_mid",
        "layer_2.mlp_act",
        "layer_2.mlp_out",
        "layer_2",
    ]
    assert names[8:] == ["layer_3.attn_out", "layer_3.mlp_out"]
    assert sorted(reversed(names), key=block_order) == names
    assert [parse_point(n) for n in ("embed", "layer_2", "layer_2.mlp_act")] == [
        (-1, "embed"),
        (2, "resid_post"),
        (2, "mlp_act"),
    ]
    assert parse_point("layer_2.bogus") is None and parse_point("layer_x") is None
    # resid_post alone (the default) gives the names stores had before sites
    assert [p.name for p in resolve_points(["middle", "last"], 4)] == ["layer_2", "layer_3"]
    assert [p.name for p in resolve_points(["middle.resid_post"], 4)] == ["layer_2"]


def test_channel_samples_per_width_follow_one_rule() -> None:
    by_width = channels_by_width({48, D_FF}, 8, seed=0)
    assert by_width == {48: sample_channels(48, 8, 0), D_FF: sample_channels(D_FF, 8, 0)}
    assert max(by_width[D_FF]) < D_FF and by_width[48] != by_width[D_FF]


def _collect(model: Path, out: Path, *extra: str) -> object:
    args = ["collect", "--model", str(model), "--data", "pydoc", "--out", str(out)]
    args += ["--max-tokens", "128", "--seq-len", "32", "--batch-size", "2", "--channels", "8"]
    return runner.invoke(app, [*args, "-q", *extra])


def test_collect_writes_every_site_with_width_channels(tiny_gpt2: Path, tmp_path: Path) -> None:
    result = _collect(tiny_gpt2, tmp_path, "--points", "middle,layer_0.mlp_act", "--sites", "all")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path)
    assert store.points == [
        "layer_0.mlp_act",
        "layer_2.attn_out",
        "layer_2.resid_mid",
        "layer_2.mlp_act",
        "layer_2.mlp_out",
        "layer_2",
    ]
    d_ff = 4 * 48  # GPT-2's n_inner default
    assert store.point_channels("layer_2.mlp_act") == sample_channels(d_ff, 8, 0)
    assert store.point_channels("layer_2") == sample_channels(48, 8, 0) == store.channel_indices
    assert store.info["channels_by_width"][str(d_ff)] == sample_channels(d_ff, 8, 0)
    assert store.metric("layer_2.mlp_act", CHANNEL_WISE).shape == (128, 8)


@pytest.fixture(scope="module")
def refusing_models(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("refusing")
    return {
        kind: build_tiny_model(kind, root / kind, tokenizer_dir)
        for kind in ("gpt_neox", "qwen3_moe")
    }


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("llama", ["--sites", "attn_out,bogus"], "unknown site 'bogus'"),
        ("llama", ["--points", "middle.bogus"], "unknown site 'bogus'"),
        ("llama", ["--points", "embed.mlp_act"], "embed has no sites"),
        ("llama", ["--points", "layer_9.mlp_act"], "out of range"),
        ("gpt_neox", ["--sites", "resid_mid"], "gpt_neox has no site resid_mid"),
        ("qwen3_moe", ["--points", "last.mlp_act"], "qwen3_moe layer 3 has no site mlp_act"),
    ],
)
def test_bad_sites_exit_2_with_one_line_and_nothing_written(
    model: str,
    args: list[str],
    message: str,
    tiny_llama: Path,
    refusing_models: dict,
    tmp_path: Path,
) -> None:
    folder = tiny_llama if model == "llama" else refusing_models[model]
    out = tmp_path / "out"
    result = _collect(folder, out, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def _row(point: str, metric: str, alpha: float) -> FitRow:
    fit = FitRecord(point, metric, alpha=alpha, xmin=1.0, n_tail=100, n=1000)
    return FitRow(0, fit, clauset_verdict(fit), alternatives_verdict(fit))


def test_by_site_view_puts_layers_in_rows_and_sites_in_block_order() -> None:
    rows = [
        _row("embed", "max_abs", 9.0),
        _row("layer_1", "max_abs", 5.0),
        _row("layer_1.mlp_act", "max_abs", 2.5),
        _row("layer_1.attn_out", "max_abs", 4.0),
        _row("layer_3.mlp_act", "max_abs", 1.5),
        _row("layer_1.mlp_act", "rms", 7.0),
    ]
    grid = site_grid(rows, "max_abs")
    assert grid is not None
    assert grid.layers == [-1, 1, 3] and grid.sites == ["attn_out", "mlp_act", "resid_post"]
    table = by_site_markdown(grid)
    assert table[-3:] == [
        "| embed | — | — | 9.00 (untested) |",
        "| layer 1 | 4.00 (untested) | 2.50 (untested) | 5.00 (untested) |",
        "| layer 3 | — | 1.50 (untested) | — |",
    ]
    html = by_site_html(grid)
    assert html.index("attn_out") < html.index("mlp_act") < html.index("resid_post")
    # one site per layer (every store made before sites): no view
    one_site = [_row("layer_1", "max_abs", 5.0), _row("layer_2", "max_abs", 4.0)]
    assert site_grid(one_site, "max_abs") is None


def test_point_names_import_without_numpy_or_torch() -> None:
    code = (
        "import sys, zipfstage.point_names; "
        "heavy = {'numpy', 'torch'} & set(sys.modules); assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_model_type_is_matched_by_structure_or_refused() -> None:
    architecture = resolve_architecture(build_model("llama"))
    derivative = dataclasses.replace(architecture, model_type="my_llama_derivative")
    assert layout_for(derivative) == LAYOUTS["llama"]
    hook = site_hook(derivative, 1, "mlp_act")
    assert hook.module is architecture.blocks[1].mlp.down_proj and hook.from_input
    assert hook.width == D_FF
    blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(LAYERS)])
    strange = dataclasses.replace(architecture, model_type="strange", blocks=blocks)
    with pytest.raises(ZipfstageError, match="strange: cannot find site mlp_act"):
        site_hook(strange, 0, "mlp_act")
    assert site_hook(strange, 0, "resid_post").module is blocks[0]

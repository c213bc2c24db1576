"""The attn site: every per-head statistic against the attention weights transformers itself
returns with eager attention and output_attentions=True (float32, 1e-5), for six architectures,
loaded with SDPA (mask None, or a sliding-window mask) and with eager attention."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from typer.testing import CliRunner

from tests.cli_helpers import all_arrays
from tests.tiny_models import LAYERS, VOCAB, build_model, build_tiny_model
from zipfstage.cli import app
from zipfstage.collect.architecture import resolve_architecture
from zipfstage.collect.attention_site import attention_points
from zipfstage.collect.attention_stats import AttentionCall, attention_stats
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.points import Point, resolve_points
from zipfstage.records import ATTN_METRICS
from zipfstage.store import open_store
from zipfstage.store.checksums import COLUMNS_ATTR
from zipfstage.store.layout import CHECKSUMS

runner = CliRunner()

KINDS = ["llama", "qwen3", "mistral", "gpt2", "opt", "gpt_neox"]
BOS = 0
T = 12


def _ids() -> torch.Tensor:
    """Row 0 starts with BOS (its first non-BOS token is at 1), row 1 does not."""
    ids = torch.randint(2, VOCAB, (2, T), generator=torch.Generator().manual_seed(7))
    ids[0, 0] = BOS
    return ids


def _model(kind: str, implementation: str, window: int | None = None) -> torch.nn.Module:
    model = build_model(kind)
    if window is not None:
        model.config.sliding_window = window
    model.set_attn_implementation(implementation)
    return model


def reference_stats(model: torch.nn.Module, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """From transformers' own eager weights [B, H, T, T], in float64: {point: [5, B*T, H]}."""
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    with torch.inference_mode():
        weights = eager(ids, output_attentions=True).attentions
    first = np.array([1 if row[0] == BOS else 0 for row in ids.tolist()])
    stats = {}
    for layer, w in enumerate(weights):
        p = w.double().numpy()  # [B, H, T, T]
        batch, heads, length, _ = p.shape
        q = np.arange(length)
        prev = p[:, :, q, np.maximum(q - 1, 0)]
        prev[:, :, 0] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
        rows = [
            p[..., 0],
            np.stack([p[b, :, :, first[b]] for b in range(batch)]),
            prev,
            p.max(-1),
            entropy,
        ]  # each [B, H, T]
        stats[f"layer_{layer}.attn"] = np.stack(
            [r.transpose(0, 2, 1).reshape(batch * length, heads) for r in rows]
        )
    return stats


def zipfstage_stats(model: torch.nn.Module, ids: torch.Tensor, points: list[Point]) -> dict:
    architecture = resolve_architecture(model)
    with (
        attention_points(architecture, points, BOS) as recorder,
        point_hooks(architecture, points, lambda point, hidden: None),
        torch.inference_mode(),
    ):
        run_until_last_point(architecture, ids)
        return recorder.to_host()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_every_statistic_matches_transformers_eager_weights(kind: str, implementation: str) -> None:
    window = 5 if kind == "mistral" else None  # a sliding window shorter than the sequence
    model = _model(kind, implementation, window)
    ids = _ids()
    points = resolve_points(["all"], LAYERS, ["attn"])
    got = zipfstage_stats(model, ids, points)
    expected = reference_stats(model, ids)
    assert {name for name, _ in got} == set(expected)
    heads = model.config.num_attention_heads
    for point, reference in expected.items():
        for index, metric in enumerate(ATTN_METRICS):
            values = got[(point, metric)]
            assert values.shape == (ids.numel(), heads)
            np.testing.assert_allclose(
                values, reference[index], rtol=0, atol=1e-5, err_msg=f"{kind} {point} {metric}"
            )
    if window is not None:  # the window really cut: the first key is out of reach late on
        assert np.all(expected["layer_0.attn"][0].reshape(2, T, heads)[:, window:] == 0)


def test_the_attention_function_is_restored_and_other_layers_are_not_recorded() -> None:
    from transformers import AttentionInterface

    before = dict(AttentionInterface._global_mapping)
    model = _model("llama", "sdpa")
    got = zipfstage_stats(model, _ids(), [Point.at(2, "attn")])
    assert {name for name, _ in got} == {"layer_2.attn"}
    assert AttentionInterface._global_mapping == before


def test_query_blocks_give_the_same_numbers_as_one_block() -> None:
    """The chunking over queries changes nothing (blocks of one query row against all rows)."""
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(2, 4, 9, 8, generator=generator)
    key = torch.randn(2, 2, 9, 8, generator=generator)
    call = AttentionCall(scaling=0.3, mask=None, sliding_window=4, softcap=5.0)
    first = torch.tensor([1, 0])
    whole = attention_stats(query, key, call, first, block_elements=1 << 30)
    rowwise = attention_stats(query, key, call, first, block_elements=1)
    # the same numbers up to float32 rounding (matmul kernels sum blocks in another order)
    torch.testing.assert_close(whole, rowwise, equal_nan=True, rtol=0, atol=1e-6)


def _collect(model: Path, out: Path, *extra: str) -> Any:
    args = ["collect", "--model", str(model), "--data", "pydoc", "--out", str(out)]
    args += ["--max-tokens", "256", "--seq-len", "32", "--batch-size", "4", "--channels", "4"]
    return runner.invoke(app, [*args, "--metrics", "all", "--topk", "4", "-q", *extra])


def test_every_other_array_is_bit_identical_with_and_without_attn(
    tiny_llama: Path, tmp_path: Path
) -> None:
    plain, with_attn = tmp_path / "plain", tmp_path / "attn"
    sites = "mlp_act,resid_post"
    assert _collect(tiny_llama, plain, "--points", "all", "--sites", sites).exit_code == 0
    result = _collect(tiny_llama, with_attn, "--points", "all", "--sites", f"attn,{sites}")
    assert result.exit_code == 0, result.output
    before, after = all_arrays(plain), all_arrays(with_attn)
    attn_arrays = {name for name in after if ".attn/" in name}
    assert len(attn_arrays) == LAYERS * len(ATTN_METRICS)
    assert set(after) - attn_arrays == set(before)
    for name, values in before.items():
        assert values.dtype == after[name].dtype, name
        if name == CHECKSUMS:  # a table with a column per covered array: compare the shared ones
            values, after[name] = _shared_checksums(plain, with_attn)
        assert np.array_equal(values, after[name], equal_nan=True), name
    store = open_store(with_attn)
    assert store.attention_points == {f"layer_{i}.attn": 4 for i in range(LAYERS)}
    assert "layer_1.attn" not in store.points
    sink = store.metric("layer_1.attn", "sink")
    positions = store.positions()
    assert sink.shape == (store.n_tokens, 4)
    np.testing.assert_allclose(sink[positions == 0], 1.0, atol=1e-6)  # row 0 sees only itself
    assert np.all((sink >= 0) & (sink <= 1 + 1e-6))


def _shared_checksums(plain: Path, other: Path) -> tuple[np.ndarray, np.ndarray]:
    """batch_checksum's columns for the arrays both stores have (the attn store covers more)."""
    tables = [zarr.open_array(p / "store.zarr" / CHECKSUMS, mode="r") for p in (plain, other)]
    names = [list(t.attrs[COLUMNS_ATTR]) for t in tables]
    shared = names[0]
    first = tables[0][:][:, [names[0].index(n) for n in shared]]
    second = tables[1][:][:, [names[1].index(n) for n in shared]]
    return first, second


def test_attn_on_an_attention_outside_the_interface_exits_2_and_writes_nothing(
    tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path, tmp_path: Path
) -> None:
    model = build_tiny_model("gpt_neo", tmp_path_factory.mktemp("neo") / "m", tokenizer_dir)
    out = tmp_path / "out"
    result = _collect(model, out, "--points", "last", "--sites", "attn,resid_post")
    assert result.exit_code == 2, result.output
    assert "does not go through transformers' AttentionInterface" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()
    # the same model without attn collects (the refusal is about the site only)
    assert _collect(model, out, "--points", "last").exit_code == 0


def test_softcap_window_and_gqa_without_a_mask_match_numpy() -> None:
    """The path no tiny model takes (a kernel called without a mask, as FlashAttention is, with
    a sliding window and Gemma-2's softcapping) against a float64 numpy softmax."""
    generator = torch.Generator().manual_seed(2)
    query = torch.randn(2, 4, 10, 8, generator=generator)
    key = torch.randn(2, 2, 10, 8, generator=generator)
    scaling, cap, window = 0.35, 3.0, 4
    call = AttentionCall(scaling=scaling, mask=None, sliding_window=window, softcap=cap)
    got = attention_stats(query, key, call, torch.tensor([1, 0])).numpy()
    q, k = query.double().numpy(), np.repeat(key.double().numpy(), 2, axis=1)  # head h -> h // 2
    logits = np.tanh(np.einsum("bhid,bhjd->bhij", q, k) * scaling / cap) * cap
    i, j = np.arange(10)[:, None], np.arange(10)[None, :]
    logits = np.where((j <= i) & (j > i - window), logits, -np.inf)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    prev = p[:, :, np.arange(10), np.maximum(np.arange(10) - 1, 0)]
    prev[:, :, 0] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    first = np.stack([p[0, :, :, 1], p[1, :, :, 0]])
    for index, expected in enumerate([p[..., 0], first, prev, p.max(-1), entropy]):
        flat = expected.transpose(0, 2, 1).reshape(20, 4)
        np.testing.assert_allclose(got[index], flat, rtol=0, atol=1e-5, err_msg=ATTN_METRICS[index])


def test_attention_arrays_are_covered_by_the_batch_checksums(
    tiny_llama: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = _collect(tiny_llama, out, "--points", "last", "--sites", "attn", "--no-compact")
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["check", "--out", str(out)]).exit_code == 0
    name = f"metrics/layer_{LAYERS - 1}.attn/sink"
    chunk = next(p for p in (out / "store.zarr" / name).iterdir() if p.name.startswith("c."))
    data = bytearray(chunk.read_bytes())
    data[40:48] = bytes(255 - b for b in data[40:48])  # values change, the file still decodes
    chunk.write_bytes(bytes(data))
    damaged = runner.invoke(app, ["check", "--out", str(out)])
    assert damaged.exit_code == 2, damaged.output
    assert name in damaged.output and "Traceback" not in damaged.output

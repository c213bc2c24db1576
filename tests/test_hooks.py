"""Hooks see exactly the hidden states the model itself reports, and stop the forward early."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import LAYERS, VOCAB, build_model
from zipfstage.collect.architecture import resolve_architecture
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.points import Point, resolve_points
from zipfstage.errors import ZipfstageError

ARCHITECTURES = ["llama", "qwen3", "mistral", "gpt2", "gpt_neox", "opt"]
FINAL_NORMS = {
    "llama": "norm",
    "qwen3": "norm",
    "mistral": "norm",
    "gpt2": "ln_f",
    "gpt_neox": "final_layer_norm",
    "opt": "decoder.final_layer_norm",
}


def _capture(
    model: torch.nn.Module, points: list[Point], ids: torch.Tensor
) -> dict[str, torch.Tensor]:
    captured: dict[str, torch.Tensor] = {}
    architecture = resolve_architecture(model)
    with point_hooks(architecture, points, lambda p, h: captured.__setitem__(p.name, h.clone())):
        run_until_last_point(architecture, ids)
    return captured


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_hooks_match_output_hidden_states(kind: str) -> None:
    model = build_model(kind)
    ids = torch.randint(2, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    points = resolve_points(["all"], LAYERS)
    with torch.inference_mode():
        captured = _capture(model, points, ids)
        reference = model(ids, output_hidden_states=True).hidden_states
    assert torch.equal(captured["embed"], reference[0])
    for i in range(LAYERS - 1):
        torch.testing.assert_close(captured[f"layer_{i}"], reference[i + 1], rtol=0, atol=0)
    # The model reports the last block's output after its final norm.
    final_norm = resolve_architecture(model).backbone.get_submodule(FINAL_NORMS[kind])
    with torch.inference_mode():
        torch.testing.assert_close(final_norm(captured[f"layer_{LAYERS - 1}"]), reference[-1])


def test_forward_stops_after_deepest_point_and_skips_lm_head() -> None:
    model = build_model("llama")
    architecture = resolve_architecture(model)
    ran: list[str] = []
    architecture.blocks[2].register_forward_hook(lambda *a: ran.append("block2"))
    model.lm_head.register_forward_hook(lambda *a: ran.append("lm_head"))
    model.model.norm.register_forward_hook(lambda *a: ran.append("norm"))
    captured = _capture(model, [Point(-1), Point(1)], torch.randint(2, VOCAB, (1, 8)))
    assert set(captured) == {"embed", "layer_1"}
    assert ran == []
    # and the hooks are gone afterwards: a plain forward runs everything
    with torch.inference_mode():
        model(torch.randint(2, VOCAB, (1, 8)))
    assert ran == ["block2", "norm", "lm_head"]


def test_resolve_points_names_and_order() -> None:
    names = [p.name for p in resolve_points(["last", "embed", "middle", "layer_-4", "first"], 28)]
    assert names == ["embed", "layer_0", "layer_14", "layer_24", "layer_27"]
    assert len(resolve_points(["all"], 3)) == 4


@pytest.mark.parametrize("bad", ["layer_28", "layer_-29", "middel", "layer_x"])
def test_resolve_points_rejects(bad: str) -> None:
    with pytest.raises(ZipfstageError, match="point"):
        resolve_points([bad], 28)

"""Every ablate intervention against an independent computation, in float32, on three tiny
architectures: the model run block by block by hand (eager attention, our own causal mask), the
hidden state edited between blocks; for super weights a copy of the model whose state dict has
the weight zeroed. The losses must agree to 1e-5."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.tiny_models import build_model, tiny_config
from zipfstage.ablate.evaluate import Watch, evaluate
from zipfstage.ablate.spec import ChannelEdit, Intervention, Target, TokenRule, WeightEdit
from zipfstage.collect.architecture import resolve_architecture

KINDS = ["llama", "gpt2", "qwen3"]
SPIKE = 7  # the channel given a massive value on the first token
Edit = Callable[[torch.Tensor], torch.Tensor]


def spiked_model(kind: str) -> torch.nn.Module:
    """A tiny random model whose first token (BOS, id 0) carries 40.0 in channel SPIKE."""
    model = build_model(kind)
    with torch.no_grad():
        model.get_input_embeddings().weight[0, SPIKE] = 40.0
    return model


def reference_copy(model: torch.nn.Module, kind: str) -> torch.nn.Module:
    """The same weights with eager attention: the by-hand forward passes its own mask."""
    from transformers import AutoModelForCausalLM

    twin = AutoModelForCausalLM.from_config(tiny_config(kind), attn_implementation="eager")
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def by_hand_loss(
    model: torch.nn.Module, kind: str, ids: torch.Tensor, edits: dict[int, Edit]
) -> float:
    """Embeddings, each block called by hand, `edits[i]` applied to block i's output, final norm,
    LM head, mean next-token cross-entropy."""
    length = ids.shape[1]
    mask = torch.full((length, length), float("-inf")).triu(1)[None, None]
    positions = torch.arange(length)[None]
    if kind == "gpt2":
        core = model.transformer
        hidden = core.wte(ids) + core.wpe(positions)
        blocks, norm, kwargs = core.h, core.ln_f, {"attention_mask": mask}
    else:
        core = model.model
        hidden = core.embed_tokens(ids)
        rotary = core.rotary_emb(hidden, positions)
        blocks, norm = core.layers, core.norm
        kwargs = {"attention_mask": mask, "position_ids": positions, "position_embeddings": rotary}
    with torch.no_grad():
        for index, block in enumerate(blocks):
            out = block(hidden, **kwargs)
            hidden = out if isinstance(out, torch.Tensor) else out[0]
            if index in edits:
                hidden = edits[index](hidden)
        logits = model.lm_head(norm(hidden))
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
    ).item()


def set_channels(
    hidden: torch.Tensor,
    channels: list[int],
    selected: torch.Tensor,
    new: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    out = hidden.clone()
    for c in channels:
        out[..., c] = torch.where(selected, new(hidden[..., c]), hidden[..., c])
    return out


def ablate_loss(
    model: torch.nn.Module, ids: torch.Tensor, intervention: Intervention
) -> tuple[float, float]:
    """(baseline, intervention) losses through ablate's hooks and evaluate()."""
    baseline = Intervention("baseline", "baseline", Target("baseline"))
    tallies = evaluate(
        model, resolve_architecture(model), [ids.numpy()], [baseline, intervention], Watch()
    )
    return tallies[0].loss, tallies[1].loss


def batch() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 384, (3, 24), generator=generator)
    ids[:, 0] = 0
    ids[1, 9] = 0  # a BOS in mid-sequence also carries the spike
    return ids


CASES = {
    "massive zero, carriers": (
        TokenRule("carriers", (SPIKE,), 20.0),
        "zero",
        (),
        lambda h: torch.zeros_like(h),
    ),
    "massive mean, carriers": (
        TokenRule("carriers", (SPIKE,), 20.0),
        "mean",
        (3.25,),
        lambda h: torch.full_like(h, 3.25),
    ),
    "typical, first token": (
        TokenRule("first"),
        "typical",
        (-0.5,),
        lambda h: torch.full_like(h, -0.5),
    ),
    "clamp, all tokens": (TokenRule("all"), "clamp", (0.05,), lambda h: h.clamp(-0.05, 0.05)),
}


def selected_by(rule: TokenRule, hidden: torch.Tensor) -> torch.Tensor:
    if rule.kind == "all":
        return torch.ones(hidden.shape[:2], dtype=torch.bool)
    if rule.kind == "first":
        return torch.arange(hidden.shape[1])[None].expand(hidden.shape[:2]) == 0
    return hidden[..., list(rule.carrier_channels)].abs().max(dim=-1).values >= rule.threshold


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_channel_edit_matches_block_by_block(kind: str, case: str) -> None:
    rule, mode, values, new = CASES[case]
    model, ids = spiked_model(kind), batch()
    channels = [SPIKE, 3]
    values = values * 2 if values else ()
    edit = ChannelEdit(1, tuple(channels), mode, values)  # type: ignore[arg-type]
    intervention = Intervention(
        case, "channels", Target("channels", (1,), tuple(channels)), mode, rule, (edit,)
    )  # type: ignore[arg-type]
    base, edited = ablate_loss(model, ids, intervention)

    def by_hand(hidden: torch.Tensor) -> torch.Tensor:
        return set_channels(hidden, channels, selected_by(rule, hidden), new)

    reference = reference_copy(model, kind)
    assert base == pytest.approx(by_hand_loss(reference, kind, ids, {}), abs=1e-5)
    assert edited == pytest.approx(by_hand_loss(reference, kind, ids, {1: by_hand}), abs=1e-5)
    assert abs(edited - base) > 1e-4, "the edit must change the loss for the test to mean much"


@pytest.mark.parametrize("kind", KINDS)
def test_edits_at_every_layer_match_block_by_block(kind: str) -> None:
    """Dettmers-style: the same channels zeroed at every block output, all tokens."""
    model, ids = spiked_model(kind), batch()
    channels = (SPIKE, 11, 30)
    edits = tuple(ChannelEdit(layer, channels, "zero") for layer in range(4))
    target = Target("dettmers", tuple(range(4)), channels)
    base, edited = ablate_loss(
        model, ids, Intervention("d", "dettmers", target, "zero", TokenRule("all"), edits)
    )

    def zero(hidden: torch.Tensor) -> torch.Tensor:
        out = hidden.clone()
        out[..., list(channels)] = 0
        return out

    reference = reference_copy(model, kind)
    expected = by_hand_loss(reference, kind, ids, dict.fromkeys(range(4), zero))
    assert edited == pytest.approx(expected, abs=1e-5)
    assert abs(edited - base) > 1e-4


DOWN_PROJ = {
    "llama": "model.layers.{}.mlp.down_proj.weight",
    "qwen3": "model.layers.{}.mlp.down_proj.weight",
    "gpt2": "transformer.h.{}.mlp.c_proj.weight",
}


@pytest.mark.parametrize("kind", KINDS)
def test_super_weight_matches_an_edited_state_dict(kind: str) -> None:
    model, ids = spiked_model(kind), batch()
    key = DOWN_PROJ[kind].format(1)
    # W[row 5, column 10]: nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out]
    index = (10, 5) if kind == "gpt2" else (5, 10)
    with torch.no_grad():  # make the weight worth removing
        model.state_dict()[key][index] = 3.0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    edit = WeightEdit(1, 5, 10)
    intervention = Intervention(
        "sw", "super_weight", Target("super_weight", (1,), weights=(edit,)), weights=(edit,)
    )
    base, edited = ablate_loss(model, ids, intervention)
    copy_ = copy.deepcopy(model)
    state = copy_.state_dict()
    state[key][index] = 0.0
    copy_.load_state_dict(state)
    with torch.no_grad():
        logits = copy_(ids).logits
    expected = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
    ).item()
    assert edited == pytest.approx(expected, abs=1e-5)
    assert abs(edited - base) > 1e-4
    for name, value in model.state_dict().items():  # the weight is restored afterwards
        assert torch.equal(value, before[name]), name


def test_zeroing_a_channel_that_carries_nothing_changes_nothing() -> None:
    """Channel 9 is written by nothing (embedding column, every o_proj and down_proj row zero):
    zeroing it at every layer on every token leaves the loss bit for bit."""
    model, ids = spiked_model("llama"), batch()
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 9] = 0
        for block in model.model.layers:
            block.self_attn.o_proj.weight[9] = 0
            block.mlp.down_proj.weight[9] = 0
    channels = (9,)
    edits = tuple(ChannelEdit(layer, channels, "zero") for layer in range(4))
    target = Target("channels", tuple(range(4)), channels)
    base, edited = ablate_loss(
        model, ids, Intervention("z", "channels", target, "zero", TokenRule("all"), edits)
    )
    assert edited == base


def test_hooks_are_removed_even_when_the_forward_fails() -> None:
    from zipfstage.ablate.hooks import intervening

    model = spiked_model("llama")
    architecture = resolve_architecture(model)
    edit = ChannelEdit(1, (3,), "zero")
    weight = WeightEdit(0, 2, 4)
    down = model.model.layers[0].mlp.down_proj.weight
    before = down[2, 4].item()
    intervention = Intervention(
        "x", "channels", Target("channels", (1,), (3,)), edits=(edit,), weights=(weight,)
    )
    with pytest.raises(RuntimeError), intervening(architecture, intervention):
        assert down[2, 4].item() == 0.0
        raise RuntimeError("boom")
    assert not any(block._forward_hooks for block in architecture.blocks)
    assert down[2, 4].item() == before
    assert np.isfinite(before)

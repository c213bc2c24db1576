"""The edits themselves: forward hooks on decoder blocks that rewrite channels of the block output,
and in-place edits of single down-projection weights. Both live in context managers that always
undo what they did (hooks removed, weights restored), whatever the forward pass raised.

The block output is the residual stream where Sun et al. intervene; the down projection is the
module the sites table names for `mlp_act` (its input), so every architecture collect supports
works, and one without a single down projection (a mixture of experts) is refused in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from zipfstage.ablate.spec import ChannelEdit, Intervention, TokenRule, WeightEdit
from zipfstage.collect.architecture import Architecture
from zipfstage.collect.sites import site_hook
from zipfstage.errors import ZipfstageError

Observer = Callable[[int, torch.Tensor], None]


def token_mask(hidden: torch.Tensor, rule: TokenRule) -> torch.Tensor:
    """[batch, seq] booleans: the tokens `rule` selects in this block output (before the edit).

    Packed rows never pad, so position 0 is column 0.
    """
    batch, seq = hidden.shape[:2]
    if rule.kind == "all":
        return torch.ones(batch, seq, dtype=torch.bool, device=hidden.device)
    if rule.kind == "first":
        mask = torch.zeros(batch, seq, dtype=torch.bool, device=hidden.device)
        mask[:, 0] = True
        return mask
    channels = torch.tensor(rule.carrier_channels, device=hidden.device)
    return (hidden[..., channels].abs() >= rule.threshold).any(dim=-1)


def edit_hidden(hidden: torch.Tensor, edit: ChannelEdit, rule: TokenRule) -> torch.Tensor:
    """A copy of `hidden` [batch, seq, d] with `edit` applied on the tokens `rule` selects."""
    mask = token_mask(hidden, rule)[..., None]
    channels = torch.tensor(edit.channels, device=hidden.device)
    current = hidden[..., channels]
    values = torch.tensor(edit.values, dtype=hidden.dtype, device=hidden.device)
    if edit.mode == "zero":
        replaced = torch.zeros_like(current)
    elif edit.mode == "clamp":
        replaced = torch.minimum(torch.maximum(current, -values), values)
    else:  # mean, typical: a constant per channel
        replaced = values.expand_as(current)
    edited = hidden.clone()
    edited[..., channels] = torch.where(mask, replaced, current)
    return edited


def _output_hidden(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[0]


def _with_hidden(output: Any, hidden: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return hidden
    return (hidden, *output[1:])


@contextmanager
def channel_edits(
    architecture: Architecture, edits: tuple[ChannelEdit, ...], rule: TokenRule
) -> Iterator[None]:
    """Forward hooks that apply each edit to its block's output; removed on exit."""
    handles: list[RemovableHandle] = []

    def make_hook(edit: ChannelEdit) -> Callable[..., Any]:
        def hook(module: Any, args: Any, output: Any) -> Any:
            return _with_hidden(output, edit_hidden(_output_hidden(output), edit, rule))

        return hook

    try:
        for edit in edits:
            block = architecture.blocks[edit.layer]
            handles.append(block.register_forward_hook(make_hook(edit)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def down_projection_weight(architecture: Architecture, layer: int) -> tuple[torch.Tensor, bool]:
    """Block `layer`'s down-projection weight and whether it is stored [in, out] (GPT-2's
    Conv1D) rather than [out, in] (nn.Linear)."""
    module = site_hook(architecture, layer, "mlp_act").module
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise ZipfstageError(f"layer {layer}'s down projection has no weight matrix to edit")
    return weight, type(module).__name__ == "Conv1D"


@contextmanager
def weight_edits(architecture: Architecture, weights: tuple[WeightEdit, ...]) -> Iterator[None]:
    """Zero W_down[row, column] of each edit in place; the old values come back on exit."""
    saved: list[tuple[torch.Tensor, tuple[int, int], torch.Tensor]] = []
    try:
        with torch.no_grad():
            for edit in weights:
                weight, transposed = down_projection_weight(architecture, edit.layer)
                index = (edit.column, edit.row) if transposed else (edit.row, edit.column)
                saved.append((weight, index, weight[index].clone()))
                weight[index] = 0
        yield
    finally:
        with torch.no_grad():
            for weight, index, value in reversed(saved):
                weight[index] = value


@contextmanager
def observers(architecture: Architecture, layers: list[int], observe: Observer) -> Iterator[None]:
    """Read-only hooks on block outputs, registered after the edits so they see edited values."""
    handles: list[RemovableHandle] = []

    def make_hook(layer: int) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            observe(layer, _output_hidden(output))

        return hook

    try:
        for layer in layers:
            handles.append(architecture.blocks[layer].register_forward_hook(make_hook(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def intervening(architecture: Architecture, intervention: Intervention) -> Iterator[None]:
    """Everything one intervention changes, undone on exit (the baseline changes nothing)."""
    with ExitStack() as stack:
        stack.enter_context(weight_edits(architecture, intervention.weights))
        stack.enter_context(channel_edits(architecture, intervention.edits, intervention.rule))
        yield

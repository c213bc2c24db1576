"""Where each sub-layer site lives in a decoder block: the one table of module paths.

A site is read by a hook on one module of block i: a forward hook on its output (`output[0]`
when the module returns a tuple) or a forward pre-hook on its first input. The paths below are
looked up by the model's `config.model_type`; a model type not in the table is matched by
structure instead (the first layout whose modules all exist in its first block), so a Llama-like
derivative works without an entry. Where a site does not exist the lookup fails with one line
naming the architecture and the site, before any store is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from zipfstage.collect.architecture import Architecture
from zipfstage.errors import ZipfstageError
from zipfstage.point_names import ATTN, RESID_POST


@dataclass(frozen=True)
class BlockLayout:
    """Module paths inside one decoder block (relative to the block); None: the site is absent."""

    attention: str  # output[0] is attn_out (after o_proj / c_proj / out_proj / dense)
    resid_mid: str | None  # its input is resid_mid (the norm that runs after the attention add)
    down_proj: str  # its input is mlp_act
    mlp: str  # its output is mlp_out
    missing: str = ""  # why resid_mid is None

    def path(self, site: str) -> str | None:
        return {
            ATTN: self.attention,
            "attn_out": self.attention,
            "resid_mid": self.resid_mid,
            "mlp_act": self.down_proj,
            "mlp_out": self.mlp,
        }[site]


#: sites read from a module's input (pre-hook); the others from its output
FROM_INPUT = frozenset({"resid_mid", "mlp_act"})

_LLAMA = BlockLayout("self_attn", "post_attention_layernorm", "mlp.down_proj", "mlp")
_GPT2 = BlockLayout("attn", "ln_2", "mlp.c_proj", "mlp")
#: OPT has no MLP module: fc2's input is mlp_act and its output mlp_out
_OPT_PRE_LN = BlockLayout("self_attn", "final_layer_norm", "fc2", "fc2")
#: post-LN OPT (opt-350m) normalises after the attention add: that norm's input is resid_mid
_OPT_POST_LN = BlockLayout("self_attn", "self_attn_layer_norm", "fc2", "fc2")
_NEOX = BlockLayout("attention", "post_attention_layernorm", "mlp.dense_4h_to_h", "mlp")
_NEOX_PARALLEL = BlockLayout(
    "attention",
    None,
    "mlp.dense_4h_to_h",
    "mlp",
    missing="use_parallel_residual: attention and MLP both read the block input",
)

LAYOUTS: dict[str, BlockLayout] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "qwen3_moe": _LLAMA,
    "mixtral": _LLAMA,
    "gpt2": _GPT2,
    "opt": _OPT_PRE_LN,
    "gpt_neox": _NEOX,
}


@dataclass(frozen=True)
class SiteHook:
    """The module to hook for one site of one block, and whether the site is its input."""

    module: nn.Module
    from_input: bool
    width: int


def layout_for(architecture: Architecture) -> BlockLayout | None:
    """The table entry for this model (with its config's variants), else one found by structure."""
    config = architecture.config
    kind = architecture.model_type
    if kind == "opt" and not getattr(config, "do_layer_norm_before", True):
        return _OPT_POST_LN
    if kind == "gpt_neox" and getattr(config, "use_parallel_residual", False):
        return _NEOX_PARALLEL
    if kind in LAYOUTS:
        return LAYOUTS[kind]
    # not in the table: match by structure, the first layout whose every module exists
    block = architecture.blocks[0]
    for layout in dict.fromkeys(LAYOUTS.values()):
        paths = [layout.attention, layout.resid_mid, layout.down_proj, layout.mlp]
        if all(p is not None and _find(block, p) is not None for p in paths):
            return layout
    return None


def site_hook(architecture: Architecture, layer: int, site: str) -> SiteHook:
    """Which module of block `layer` carries `site`, or one line saying why none does."""
    block = architecture.blocks[layer]
    if site == RESID_POST:
        return SiteHook(block, from_input=False, width=architecture.hidden_size)
    name = architecture.model_type or type(block).__name__
    layout = layout_for(architecture)
    if layout is None:
        raise ZipfstageError(
            f"{name}: cannot find site {site} (unknown block layout); "
            "add the model type to zipfstage.collect.sites.LAYOUTS"
        )
    path = layout.path(site)
    if path is None:
        raise ZipfstageError(f"{name} has no site {site} ({layout.missing})")
    module = _find(block, path)
    if module is None:
        raise ZipfstageError(
            f"{name} layer {layer} has no site {site}: {_why_missing(block, path)}"
        )
    if site == ATTN:  # statistics per head, recorded inside the module (attention_site.py)
        return SiteHook(module, from_input=False, width=attention_heads(architecture))
    width = _input_width(module) if site == "mlp_act" else architecture.hidden_size
    return SiteHook(module, from_input=site in FROM_INPUT, width=width)


def attention_heads(architecture: Architecture) -> int:
    """The number of query heads (the width of the attn site's arrays)."""
    config = architecture.config
    for name in ("num_attention_heads", "n_head", "num_heads"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ZipfstageError(f"{architecture.model_type}: cannot tell the number of attention heads")


def _why_missing(block: nn.Module, path: str) -> str:
    parent = _find(block, path.rpartition(".")[0]) if "." in path else None
    if parent is not None and hasattr(parent, "experts"):
        return "its MLP is a mixture of experts (no single down projection)"
    return f"no module {path} in {type(block).__name__}"


def _find(root: nn.Module, path: str) -> nn.Module | None:
    module: Any = root
    for part in path.split("."):
        module = getattr(module, part, None)
    return module if isinstance(module, nn.Module) else None


def _input_width(module: nn.Module) -> int:
    """in_features of nn.Linear; Conv1D (GPT-2) stores its weight as [in, out]."""
    features = getattr(module, "in_features", None)
    if isinstance(features, int):
        return features
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and weight is not None:
        return int(weight.shape[0])
    raise ZipfstageError(f"cannot tell the input width of {type(module).__name__}")

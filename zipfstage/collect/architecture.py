"""Find a causal LM's decoder blocks and the module to call without its LM head.

Works by structure, not by model name: the backbone is `model.base_model` and the blocks are the
ModuleList whose length is the configured number of layers (known paths first, then a search).
Qwen3, Llama/SmolLM2, Mistral, GPT-2, GPT-NeoX and OPT all resolve this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from zipfstage.errors import ZipfstageError

KNOWN_BLOCK_PATHS = ("layers", "h", "decoder.layers", "blocks", "transformer.h", "model.layers")


@dataclass(frozen=True)
class Architecture:
    backbone: nn.Module
    blocks: nn.ModuleList
    hidden_size: int
    #: `config.model_type` ("llama", "gpt2", ...) and the text config, for the site table
    model_type: str = ""
    config: Any = None

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def resolve_architecture(model: nn.Module) -> Architecture:
    config: Any = getattr(model, "config", None)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_layers = _first_attr(text_config, ("num_hidden_layers", "n_layer", "num_layers"))
    hidden = _first_attr(text_config, ("hidden_size", "n_embd", "d_model"))
    backbone = getattr(model, "base_model", model)
    blocks = _find_blocks(backbone, n_layers)
    if blocks is None:
        raise ZipfstageError(
            f"cannot find the {n_layers} decoder blocks of {type(model).__name__}; "
            "add its path to zipfstage.collect.architecture.KNOWN_BLOCK_PATHS"
        )
    return Architecture(
        backbone=backbone,
        blocks=blocks,
        hidden_size=int(hidden),
        model_type=str(getattr(text_config, "model_type", "") or ""),
        config=text_config,
    )


def _first_attr(config: object, names: tuple[str, ...]) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ZipfstageError(f"the model config has none of {', '.join(names)}")


def _find_blocks(backbone: nn.Module, n_layers: int) -> nn.ModuleList | None:
    for path in KNOWN_BLOCK_PATHS:
        module: object = backbone
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    for _, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    return None

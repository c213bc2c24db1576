"""Tiny random causal LMs of several architectures, and a BPE tokenizer trained on local text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

VOCAB = 384
HIDDEN = 48
LAYERS = 4


def train_tokenizer(folder: Path) -> Path:
    """A byte-level BPE trained on pydoc's text, saved as a transformers fast tokenizer."""
    from pydoc_data import topics

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(topics.topics.values()), trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>"
    )
    wrapped.save_pretrained(folder)
    return folder


def tiny_config(kind: str) -> Any:
    """A config small enough to run in milliseconds, with the real architecture's layout."""
    import transformers as tf

    common: dict[str, Any] = {"vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 1}
    decoder = {
        "hidden_size": HIDDEN,
        "intermediate_size": 96,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "max_position_embeddings": 512,
    }
    if kind == "llama":
        return tf.LlamaConfig(**common, **decoder, num_key_value_heads=2)
    if kind == "qwen3":
        return tf.Qwen3Config(**common, **decoder, num_key_value_heads=2, head_dim=12)
    if kind == "mistral":
        return tf.MistralConfig(**common, **decoder, num_key_value_heads=2)
    if kind == "gpt2":
        return tf.GPT2Config(**common, n_embd=HIDDEN, n_layer=LAYERS, n_head=4, n_positions=512)
    if kind == "gpt_neox":
        return tf.GPTNeoXConfig(**common, **decoder)
    if kind == "gpt_neox_serial":  # use_parallel_residual=False: a resid_mid exists
        return tf.GPTNeoXConfig(**common, **decoder, use_parallel_residual=False)
    if kind == "qwen3_moe":  # every block's MLP a mixture of 4 experts, 2 per token
        return tf.Qwen3MoeConfig(
            **common,
            **decoder,
            num_key_value_heads=2,
            head_dim=12,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
        )
    if kind == "opt":
        return tf.OPTConfig(
            **common,
            hidden_size=HIDDEN,
            ffn_dim=96,
            num_hidden_layers=LAYERS,
            num_attention_heads=4,
            max_position_embeddings=512,
            word_embed_proj_dim=HIDDEN,
        )
    if kind == "gpt_neo":  # its attention does not go through transformers' AttentionInterface
        return tf.GPTNeoConfig(
            **common,
            hidden_size=HIDDEN,
            num_layers=LAYERS,
            num_heads=4,
            intermediate_size=96,
            attention_types=[[["global", "local"], LAYERS // 2]],
            max_position_embeddings=512,
        )
    if kind == "opt_post_ln":  # like opt-350m: the norms run after the residual adds
        config = tiny_config("opt")
        config.do_layer_norm_before = False
        return config
    raise ValueError(kind)


def build_model(kind: str) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(kind))
    return model.eval()


def build_tiny_model(kind: str, folder: Path, tokenizer_dir: Path) -> Path:
    """Save a tiny random model with the shared tokenizer, loadable by path."""
    from transformers import AutoTokenizer

    build_model(kind).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder

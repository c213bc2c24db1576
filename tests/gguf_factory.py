"""Write a tiny HF Llama folder as an F32 GGUF file, the way llama.cpp's converter lays it out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFWriter, TokenType
from safetensors.numpy import load_file

# HF parameter name inside `model.layers.N.` -> GGUF tensor name inside `blk.N.`
_LAYER_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOP_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def permute_qk(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation: per head, HF's rotary half-split -> interleaved pairs."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensor_name(hf_name: str) -> str:
    """GGUF name of a parameter: `model.layers.0.mlp.up_proj.weight` -> `blk.0.ffn_up.weight`."""
    stem, suffix = hf_name.rsplit(".", 1)
    if stem in _TOP_NAMES:
        return f"{_TOP_NAMES[stem]}.{suffix}"
    match = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", stem)
    if match is None or match[2] not in _LAYER_NAMES:
        raise KeyError(f"no GGUF name for {hf_name}")
    return f"blk.{match[1]}.{_LAYER_NAMES[match[2]]}.{suffix}"


def _add_tokenizer(writer: GGUFWriter, model_dir: Path, config: dict[str, Any]) -> None:
    """Byte-level BPE as `tokenizer.ggml.*`: tokens by id, `a b` merges, specials as CONTROL."""
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    vocab: dict[str, int] = dict(spec["model"]["vocab"])
    special = {added["content"] for added in spec["added_tokens"] if added["special"]}
    for added in spec["added_tokens"]:
        vocab[added["content"]] = added["id"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    assert [vocab[t] for t in tokens] == list(range(len(tokens))), "token ids must be dense"
    assert len(tokens) == config["vocab_size"], "tokenizer and model vocabularies differ"
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [TokenType.CONTROL if t in special else TokenType.NORMAL for t in tokens]
    )
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_add_bos_token(False)


def write_tiny_llama_gguf(folder: Path, model_dir: Path) -> Path:
    """Convert the HF Llama in `model_dir` to an all-F32 `.gguf` in `folder`; return its path."""
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama", config["model_type"]
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    rope = config.get("rope_parameters") or {"rope_theta": config.get("rope_theta", 10000.0)}

    path = folder / "tiny-llama-F32.gguf"
    writer = GGUFWriter(path, "llama")
    writer.add_name("tiny-llama")
    writer.add_file_type(0)  # ALL_F32
    writer.add_vocab_size(config["vocab_size"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    _add_tokenizer(writer, model_dir, config)

    for hf_name, weights in sorted(load_file(model_dir / "model.safetensors").items()):
        weights = weights.astype(np.float32)
        if hf_name.endswith("self_attn.q_proj.weight"):
            weights = permute_qk(weights, n_head)
        elif hf_name.endswith("self_attn.k_proj.weight"):
            weights = permute_qk(weights, n_kv)
        writer.add_tensor(gguf_tensor_name(hf_name), np.ascontiguousarray(weights))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path

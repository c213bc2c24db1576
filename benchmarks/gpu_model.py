"""Save a random-weight Qwen3-shaped causal LM and an offline tokenizer into a folder.

    python benchmarks/gpu_model.py FOLDER [--shape 0.6b|4b] [--device cuda]

For `benchmarks/gpu_check.sh` on a machine without internet: the shapes set the cost, the weights
do not matter for speed. `0.6b`: Qwen3-0.6B (28 layers, width 1,024, d_ff 3,072, 16 query / 8
key-value heads of 128). `4b`: Qwen3-4B (36 layers, width 2,560, d_ff 9,728, 32 / 8 heads of
128), so `--sites all` gives its 181 points with the 9,728-wide `mlp_act`; its 4B weights are
drawn on `--device` (seconds on a GPU, minutes on a CPU) and saved in bf16 (~8 GB). The
vocabulary is the small trained tokenizer's, so the embedding and LM head are tiny.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from tests.tiny_models import train_tokenizer

#: name -> (layers, hidden, d_ff, query heads, key-value heads)
SHAPES = {"0.6b": (28, 1024, 3072, 16, 8), "4b": (36, 2560, 9728, 32, 8)}


def build(folder: Path, shape: str, device: str) -> None:
    if (folder / "config.json").exists():
        return
    tokenizer_dir = train_tokenizer(folder / "tokenizer-src")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    layers, hidden, d_ff, heads, kv_heads = SHAPES[shape]
    config = Qwen3Config(
        vocab_size=max(len(tokenizer), 1024),
        hidden_size=hidden,
        intermediate_size=d_ff,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=128,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(config)
    model.to(dtype=torch.bfloat16)  # type: ignore[call-arg]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.6b")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    build(args.folder, args.shape, args.device)


if __name__ == "__main__":
    main()

"""Save a random-weight Qwen3-0.6B-shaped causal LM and an offline tokenizer into a folder.

    python benchmarks/gpu_model.py FOLDER

For `benchmarks/gpu_check.sh` on a machine without internet: the shapes (28 layers, width 1024,
d_ff 3072, 16 query / 8 key-value heads of 128) set the cost; the weights do not matter for speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from tests.tiny_models import train_tokenizer


def main(folder: Path) -> None:
    if (folder / "config.json").exists():
        return
    tokenizer_dir = train_tokenizer(folder / "tokenizer-src")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen3Config(
        vocab_size=max(len(tokenizer), 1024),
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    model.to(dtype=torch.bfloat16)  # type: ignore[call-arg]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

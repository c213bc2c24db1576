"""The tokenizer `collect` saves beside the store: later stages decode ids without the model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from zipfstage.store.layout import tokenizer_path

Decoder = Callable[[int], str]


def load_decoder(out_dir: Path) -> Decoder | None:
    """Decode single token ids with the tokenizer `collect` saved; None when there is none."""
    path = tokenizer_path(out_dir)
    if not path.is_dir():
        return None
    try:
        if (path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            fast = Tokenizer.from_file(str(path / "tokenizer.json"))
            return lambda token: fast.decode([token], skip_special_tokens=False)
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(str(path))
        return lambda token: str(slow.decode([token]))
    except (ImportError, OSError, ValueError, json.JSONDecodeError):
        return None

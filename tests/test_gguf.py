"""Loading a model from a .gguf file: a tiny Llama written as GGUF matches its HF source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGUFReader
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from tests.gguf_factory import gguf_tensor_name, permute_qk, write_tiny_llama_gguf
from zipfstage.cli import app
from zipfstage.collect.models import load_model
from zipfstage.store import open_store

runner = CliRunner()
SENTENCE = "The quick brown fox: def f(x):\n\treturn x ** 2  # squares, 3.14!"
COLLECT = [
    "--data",
    "pydoc",
    "--max-tokens",
    "256",
    "--seq-len",
    "32",
    "--batch-size",
    "4",
    "--channels",
    "4",
    "-q",
]


@pytest.fixture(scope="session")
def tiny_llama_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    """The session's tiny Llama as an F32 GGUF, alone in its folder (no config.json beside it)."""
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf"), tiny_llama)


def test_factory_writes_llama_cpp_layout(tiny_llama_gguf: Path) -> None:
    """Names, F32 types and llama metadata in the file are what llama.cpp's converter writes."""
    reader = GGUFReader(tiny_llama_gguf)
    names = {t.name for t in reader.tensors}
    assert {
        "token_embd.weight",
        "output_norm.weight",
        "output.weight",
        "blk.3.attn_q.weight",
        "blk.0.ffn_down.weight",
        "blk.2.ffn_norm.weight",
    } <= names
    assert len(names) == 3 + 4 * 9
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}
    field = reader.fields["llama.attention.head_count_kv"]
    assert int(field.parts[field.data[0]][0]) == 2
    assert gguf_tensor_name("model.layers.1.self_attn.o_proj.weight") == "blk.1.attn_output.weight"
    # the permutation really reorders rows (so a missing or doubled one shows in the outputs)
    rows = np.arange(24, dtype=np.float32)[:, None]
    assert not np.array_equal(permute_qk(rows, 2), rows)


def test_gguf_loads_and_matches_source(tiny_llama_gguf: Path, tiny_llama: Path) -> None:
    """load_model on the .gguf path gives the source model's hidden states and tokenization."""
    loaded = load_model(str(tiny_llama_gguf), dtype="float32", device="cpu")
    source = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    assert loaded.architecture.n_layers == source.config.num_hidden_layers == 4
    assert loaded.architecture.hidden_size == source.config.hidden_size == 48
    assert loaded.describe()["model_type"] == "llama"

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    ids = hf_tokenizer(SENTENCE, add_special_tokens=False)["input_ids"]
    assert loaded.tokenizer(SENTENCE, add_special_tokens=False)["input_ids"] == ids
    assert loaded.tokenizer.decode(ids) == SENTENCE
    assert (loaded.tokenizer.bos_token_id, loaded.tokenizer.eos_token_id) == (0, 1)

    batch = torch.tensor([[0, *ids[:23]], [0, *ids[-23:]]])
    assert len(ids) >= 23
    with torch.inference_mode():
        expected = source(batch, output_hidden_states=True).hidden_states
        got = loaded.model(batch, output_hidden_states=True).hidden_states
    assert len(got) == len(expected) == 5
    for mine, theirs in zip(got, expected, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_collect_from_gguf_matches_collect_from_folder(
    tiny_llama_gguf: Path, tiny_llama: Path, tmp_path: Path
) -> None:
    """`collect --model x.gguf` writes a complete store equal to the HF folder's run."""
    stores = {}
    for label, model in (("gguf", tiny_llama_gguf), ("hf", tiny_llama)):
        out = tmp_path / label
        result = runner.invoke(app, ["collect", "--model", str(model), *COLLECT, "--out", str(out)])
        assert result.exit_code == 0, result.output
        stores[label] = open_store(out)
    gguf_store, hf_store = stores["gguf"], stores["hf"]
    assert gguf_store.complete and gguf_store.n_tokens == 256
    assert gguf_store.info["model"]["name"] == str(tiny_llama_gguf)
    assert gguf_store.points == hf_store.points and gguf_store.points[-1] == "layer_3"
    np.testing.assert_array_equal(gguf_store.token_ids(), hf_store.token_ids())
    rms = gguf_store.metric("layer_3", "rms")
    assert rms.shape == (256,) and np.isfinite(rms).all()
    np.testing.assert_allclose(rms, hf_store.metric("layer_3", "rms"), rtol=1e-5, atol=0)


def test_missing_gguf_file_exits_2(tmp_path: Path) -> None:
    """A .gguf path that does not exist is a usage error, not a hub lookup."""
    missing = tmp_path / "nope.gguf"
    args = ["collect", "--model", str(missing), *COLLECT, "--out", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "GGUF file not found" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()

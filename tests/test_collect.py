"""collect end to end on tiny models: store contents, metrics vs a reference, refusals, locking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from tests.test_metrics import reference, topk_reference
from zipfstage.cli import app
from zipfstage.collect.corpus import DataSpec, iter_batches, iter_documents, pack_sequences
from zipfstage.store import open_store
from zipfstage.store.lock import exclusive_lock

runner = CliRunner()
SMALL = ["--max-tokens", "640", "--seq-len", "32", "--batch-size", "4", "--channels", "8", "-q"]


def collect(model: Path, out: Path, *extra: str, data: Path | str = "pydoc") -> object:
    args = [
        "collect",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(out),
        *SMALL,
        *extra,
    ]
    return runner.invoke(app, args)


def tree_snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_qwen3", "tiny_gpt2"])
def test_collect_store_matches_reference(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model_dir: Path = request.getfixturevalue(fixture)
    result = collect(model_dir, tmp_path, "--points", "embed,middle,last")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path)
    assert store.complete and store.points == ["embed", "layer_2", "layer_3"]
    assert store.n_tokens == 640 and store.info["n_batches"] == 5

    # tokens: the deterministic packing of the corpus, BOS first in each sequence
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batches = list(
        iter_batches(pack_sequences(iter_documents(DataSpec("pydoc")), tokenizer, 32, True), 4, 20)
    )
    expected_ids = np.concatenate([b.ravel() for b in batches])
    np.testing.assert_array_equal(store.token_ids(), expected_ids)
    np.testing.assert_array_equal(store.positions(), np.tile(np.arange(32), 20))
    assert (store.token_ids()[::32] == tokenizer.bos_token_id).all()

    # metrics: numpy on the model's own output_hidden_states for the same tokens
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        hidden = model(
            torch.from_numpy(np.stack(batches[:2]).reshape(-1, 32)), output_hidden_states=True
        ).hidden_states
    embed = hidden[0].reshape(-1, hidden[0].shape[-1]).double().numpy()
    middle = hidden[3].reshape(-1, hidden[3].shape[-1]).double().numpy()
    rows = slice(0, len(embed))
    for metric in (
        "rms",
        "kurtosis",
        "gini",
        "entropy",
        "max_to_median",
        "median_abs",
        "hill_tail",
    ):
        np.testing.assert_allclose(
            store.metric("embed", metric)[rows], reference(metric, embed), rtol=3e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            store.metric("layer_2", metric)[rows], reference(metric, middle), rtol=3e-4, atol=1e-5
        )
    assert_topk_arrays(plain_root(tmp_path), "layer_2", middle, rows)
    channels = store.channel_indices
    assert len(channels) == 8
    np.testing.assert_allclose(
        store.metric("layer_2", "channel_wise")[rows], middle[:, channels], rtol=1e-5, atol=1e-6
    )
    info = store.info
    assert info["model"]["n_layers"] == 4 and info["model"]["hidden_size"] == 48
    assert info["versions"]["torch"] == torch.__version__
    assert (tmp_path / "tokenizer" / "tokenizer.json").exists()
    # plain zarr reads it without zipfstage
    plain = zarr.open_group(tmp_path / "store.zarr", mode="r")
    assert plain["metrics/layer_3/rms"].shape == (640,)


def plain_root(out: Path) -> zarr.Group:
    return zarr.open_group(out / "store.zarr", mode="r")


def assert_topk_arrays(root: zarr.Group, point: str, hidden: np.ndarray, rows: slice) -> None:
    """The contract's three [N, 8] arrays: dtypes, fills, attributes, values against numpy."""
    ref_abs, ref_channel, ref_sign = topk_reference(hidden, 8)
    arrays = {
        name: root[f"metrics/{point}/{name}"] for name in ("topk_abs", "topk_channel", "topk_sign")
    }
    dtypes = {name: (str(a.dtype), a.fill_value) for name, a in arrays.items()}  # type: ignore[union-attr]
    assert dtypes["topk_channel"] == ("int32", -1) and dtypes["topk_sign"] == ("int8", 0)
    assert dtypes["topk_abs"][0] == "float32" and np.isnan(dtypes["topk_abs"][1])
    for array in arrays.values():
        assert array.shape == (640, 8)  # type: ignore[union-attr]
        assert dict(array.attrs) == {"width": 48, "k": 8, "k_requested": 8}
    np.testing.assert_allclose(np.asarray(arrays["topk_abs"][rows]), ref_abs, rtol=1e-5, atol=1e-6)  # type: ignore[index]
    # float32 hidden states may swap near-equal channels that float64 orders apart
    channel = np.asarray(arrays["topk_channel"][rows])  # type: ignore[index]
    assert (channel == ref_channel).mean() > 0.99
    sign = np.asarray(arrays["topk_sign"][rows])  # type: ignore[index]
    assert (sign[channel == ref_channel] == ref_sign[channel == ref_channel]).all()


def test_topk_larger_than_width_is_clamped_with_a_note(tiny_llama: Path, tmp_path: Path) -> None:
    result = collect(tiny_llama, tmp_path, "--points", "embed,last", "--topk", "100")
    assert result.exit_code == 0, result.output
    root = plain_root(tmp_path)
    array = root["metrics/layer_3/topk_channel"]
    assert array.shape == (640, 48)  # type: ignore[union-attr]
    assert dict(array.attrs) == {"width": 48, "k": 48, "k_requested": 100}
    # every channel once per token: a full descending order
    assert (np.sort(np.asarray(array[:]), axis=1) == np.arange(48)).all()  # type: ignore[index]
    info = open_store(tmp_path).info
    assert info["topk"]["k_requested"] == 100 and info["topk"]["k"] == {"embed": 48, "layer_3": 48}
    assert "clamped" in info["topk"]["note"]


def test_topk_zero_writes_no_topk_arrays(tiny_llama: Path, tmp_path: Path) -> None:
    result = collect(tiny_llama, tmp_path, "--points", "last", "--topk", "0")
    assert result.exit_code == 0, result.output
    assert "topk_abs" not in plain_root(tmp_path)["metrics/layer_3"]  # type: ignore[operator]
    assert "topk" not in open_store(tmp_path).info


def test_fit_reads_the_collected_topk_arrays(tiny_llama: Path, tmp_path: Path) -> None:
    """A real collect gives a store the outlier analysis reads, and fit skips the top-k arrays."""
    assert collect(tiny_llama, tmp_path, "--points", "embed,middle,last").exit_code == 0
    store = open_store(tmp_path)
    assert "topk_abs" in store.info["metrics"] and "topk_abs" not in store.metrics
    fit = runner.invoke(app, ["fit", "--out", str(tmp_path), "--metrics", "max_abs,hill_tail"])
    assert fit.exit_code == 0, fit.output
    outliers = json.loads((tmp_path / "outliers.json").read_text())
    assert outliers["store_id"] == store.attributes.generation
    assert sorted(outliers["points"]) == sorted(store.points)
    for (
        point
    ) in store.points:  # the largest |h| over every token and channel (no position left out)
        largest = float(np.max(store.metric(point, "max_abs")))
        assert outliers["points"][point]["massive"]["top"][0] == pytest.approx(largest, rel=1e-6)
    fits = json.loads((tmp_path / "fits.json").read_text())
    assert not any(name.startswith("topk") for by_metric in fits.values() for name in by_metric)


def test_rerun_of_finished_collect_does_nothing(tiny_llama: Path, tmp_path: Path) -> None:
    assert collect(tiny_llama, tmp_path).exit_code == 0
    before = tree_snapshot(tmp_path / "store.zarr")
    again = collect(tiny_llama, tmp_path)
    assert again.exit_code == 0
    assert "already complete" in again.output
    assert tree_snapshot(tmp_path / "store.zarr") == before


def test_different_settings_refused_unless_overwrite(tiny_llama: Path, tmp_path: Path) -> None:
    assert collect(tiny_llama, tmp_path).exit_code == 0
    before = tree_snapshot(tmp_path / "store.zarr")
    refused = collect(tiny_llama, tmp_path, "--seq-len", "16")
    assert refused.exit_code == 2
    assert "different settings" in refused.output and "seq_len 32 -> 16" in refused.output
    assert tree_snapshot(tmp_path / "store.zarr") == before
    (tmp_path / "fits.json").write_text("{}")  # outputs derived from the old store
    (tmp_path / "plots").mkdir()
    (tmp_path / "tokenizer" / "stale-marker").write_text("old")
    replaced = collect(tiny_llama, tmp_path, "--seq-len", "16", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert open_store(tmp_path).info["plan"]["seq_len"] == 16
    assert not (tmp_path / "fits.json").exists() and not (tmp_path / "plots").exists()
    assert not (tmp_path / "tokenizer" / "stale-marker").exists()
    assert (tmp_path / "tokenizer" / "tokenizer.json").exists()


def test_second_collect_on_same_out_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    with exclusive_lock(tmp_path):
        result = collect(tiny_llama, tmp_path)
    assert result.exit_code == 2
    assert "in use by collect" in result.output
    assert not (tmp_path / "store.zarr").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent/model"], "model folder not found"),
        (["--model", "no-such-org/no-such-model-xyz"], "cannot load model"),
        (["--points", "layer_9"], "out of range"),
        (["--points", "middel"], "unknown point"),
        (["--metrics", "rms,kurt"], "unknown metric kurt"),
        (["--max-tokens", "0"], "max_tokens"),
        (["--topk", "-1"], "topk"),
        (["--hill-k", "0"], "hill_k"),
        (["--max-tokens", "10"], "less than one sequence"),
        (["--data", "EMPTY"], "no full sequence"),
        (["--data", "/nonexistent/corpus.txt"], "data file not found"),
        (["--dtype", "float8"], "dtype"),
        (["--config", "/nonexistent.yaml"], "config file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_store(
    args: list[str], message: str, tiny_llama: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "out"
    full = ["collect", "--model", str(tiny_llama), "--data", "pydoc", "--out", str(out), *SMALL]
    full += [str(empty) if a == "EMPTY" else a for a in args]
    result = runner.invoke(app, full)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_input_leaves_existing_store_unchanged(tiny_llama: Path, tmp_path: Path) -> None:
    assert collect(tiny_llama, tmp_path).exit_code == 0
    before = tree_snapshot(tmp_path)
    result = collect(tiny_llama, tmp_path, "--points", "layer_99")
    assert result.exit_code == 2
    assert tree_snapshot(tmp_path) == before


def test_unwritable_out_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = collect(tiny_llama, blocker / "sub")
    assert result.exit_code == 2
    assert "not writable" in result.output or "is a file" in result.output


def test_local_jsonl_and_text_sources(tiny_llama: Path, tmp_path: Path, text_corpus: Path) -> None:
    records = tmp_path / "docs.jsonl"
    texts = [p.read_text() for p in sorted(text_corpus.glob("*.txt"))]
    records.write_text("\n".join(json.dumps({"body": t}) for t in texts))
    from_json = collect(tiny_llama, tmp_path / "a", "--text-field", "body", data=records)
    assert from_json.exit_code == 0, from_json.output
    from_text = collect(tiny_llama, tmp_path / "b", data=text_corpus)
    assert from_text.exit_code == 0, from_text.output
    # same documents in the same order give the same tokens
    np.testing.assert_array_equal(
        open_store(tmp_path / "a").token_ids(), open_store(tmp_path / "b").token_ids()
    )
    wrong_field = collect(tiny_llama, tmp_path / "c", data=records)
    assert wrong_field.exit_code == 2 and "--text-field" in wrong_field.output
    assert not (tmp_path / "c").exists()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": texts}), table)
    from_parquet = collect(tiny_llama, tmp_path / "d", data=table)
    assert from_parquet.exit_code == 0, from_parquet.output
    np.testing.assert_array_equal(
        open_store(tmp_path / "d").token_ids(), open_store(tmp_path / "b").token_ids()
    )


def test_corpus_shorter_than_max_tokens_trims_store(tiny_llama: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("word " * 300)
    result = collect(tiny_llama, tmp_path / "out", "--max-tokens", "100000", data=short)
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "out")
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    n_sequences = len(list(pack_sequences([short.read_text()], tokenizer, 32, True)))
    assert n_sequences % 4 != 0, "the test needs a partial last batch"
    assert store.complete and store.n_tokens == n_sequences * 32
    assert store.root["metrics/layer_3/rms"].shape == (store.n_tokens,)
    assert not np.isnan(store.metric("layer_3", "rms")).any()

"""collect's disk: the size estimate against `du`, the free-space refusal, 16-bit values, and a
corpus that ends before --max-tokens."""

from __future__ import annotations

import re
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from zipfstage.cli import app
from zipfstage.collect import coordinator, disk_space
from zipfstage.store import compact, open_store
from zipfstage.store.space import allocated_bytes
from zipfstage.store.values import decode, encode, encoding_of

runner = CliRunner()
#: 2,048 tokens in 8 batches at three points: about 2 MB of store, seconds on the tiny model
RUN = ["--max-tokens", "2048", "--seq-len", "64", "--batch-size", "4", "-q"]
HALF = ("channel_wise", "topk_abs")
Usage = namedtuple("Usage", "total used free")


def collect(model: Path, out: Path, *extra: str) -> Any:
    args = ["collect", "--model", str(model), "--data", "pydoc", "--out", str(out), *RUN, *extra]
    return runner.invoke(app, args)


def test_estimate_is_within_ten_percent_of_the_peak_du(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peak is measured as `du` counts (blocks, not apparent size): the store when collect
    ends, and the store plus each array's copy just before compaction swaps it in. Every site
    of every layer (21 points), as a real all-sites run: the estimate counts compaction's copy
    of the largest array at its uncompressed size, an upper bound that matters little when
    one array is a small part of the store (at 3 points it was 12 % over the peak)."""
    estimates: list[disk_space.SpaceEstimate] = []
    spec_estimate = disk_space.spec_estimate

    def recording(*args: Any) -> disk_space.SpaceEstimate:
        estimates.append(spec_estimate(*args))
        return estimates[-1]

    store = tmp_path / "store.zarr"
    sizes: list[int] = []
    swap, compact_store = compact._swap, coordinator.compact_store

    def measuring_compact(path: Path, **kwargs: Any) -> Any:
        sizes.append(allocated_bytes(store))  # collect's store, before compaction
        return compact_store(path, **kwargs)

    def measuring_swap(final: Path, trash: Path, new: Path) -> None:
        sizes.append(allocated_bytes(store) + allocated_bytes(compact.work_dir(store)))
        swap(final, trash, new)

    monkeypatch.setattr(disk_space, "spec_estimate", recording)
    monkeypatch.setattr(coordinator, "compact_store", measuring_compact)
    monkeypatch.setattr(compact, "_swap", measuring_swap)
    result = collect(tiny_llama, tmp_path, "--points", "all", "--sites", "all")
    assert result.exit_code == 0, result.output
    assert open_store(tmp_path).n_tokens == 2048  # the corpus holds more: all planned tokens
    estimate = estimates[0]
    assert estimate.points == 21 and estimate.tokens == 2048
    assert abs(estimate.store_bytes - sizes[0]) <= 0.10 * sizes[0], (estimate, sizes[0])
    peak = max(sizes)
    assert abs(estimate.peak_bytes(compact=True) - peak) <= 0.10 * peak, (estimate, peak)


def test_too_small_a_disk_is_refused_in_one_line_before_anything_is_written(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 10**6, 10**6))
    result = collect(tiny_llama, tmp_path)
    assert result.exit_code == 2, result.output
    refusal = [line for line in result.output.splitlines() if "free" in line and "needs" in line]
    assert len(refusal) == 1 and "--no-space-check" in refusal[0]
    assert re.search(r"has 1 MB free but the store needs about [\d.]+ MB", result.output)
    assert "Traceback" not in result.output
    assert not (tmp_path / "store.zarr").exists()
    # the override collects all the same; without -q the estimate is printed
    args = ["collect", "--model", str(tiny_llama), "--out", str(tmp_path), "--no-space-check"]
    result = runner.invoke(app, [*args, *RUN[:-1]])
    assert result.exit_code == 0, result.output
    assert re.search(r"note: the store will take about [\d.]+ MB \(", result.output)
    assert open_store(tmp_path).complete


def uncommit(run: Path, first: int) -> None:
    """Batches `first`.. uncommitted and the store running, as a kill would leave them."""
    zarr.open_array(run / "store.zarr" / "progress", mode="r+")[first:] = 0
    group = zarr.open_group(run / "store.zarr", mode="r+")
    group.attrs["zipfstage"] = {**group.attrs["zipfstage"], "status": "running"}


def test_a_resume_checks_only_the_batches_still_to_come(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half the batches in: room for the rest is enough, less is refused."""
    collect(tiny_llama, tmp_path, "--no-compact")
    whole = allocated_bytes(tmp_path / "store.zarr")
    uncommit(tmp_path, 4)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 0, int(whole * 0.2)))
    result = collect(tiny_llama, tmp_path, "--no-compact")
    assert result.exit_code == 2 and "more: free some space" in result.output, result.output
    room = whole * 0.75  # less than the whole store, more than the rest
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 0, int(room)))
    result = collect(tiny_llama, tmp_path, "--no-compact")
    assert result.exit_code == 0, result.output
    assert open_store(tmp_path).complete


def test_estimate_counts_two_bytes_per_half_value(tiny_llama: Path) -> None:
    """Per token and point: 16 float32 metrics, 48 channels, top-8 (value, int32, int8)."""
    from zipfstage.collect.spec import StoreSpec
    from zipfstage.store import StorePlan, TopkLayout

    plan = StorePlan(batch_size=8, seq_len=64, planned_batches=10)
    metrics = [*(f"m{i}" for i in range(16)), "channel_wise"]
    for dtype, per_point in (("float32", 64 + 48 * 4 + 8 * 9), ("uint16", 64 + 48 * 2 + 8 * 7)):
        spec = StoreSpec(
            "h", {}, plan, ["embed", "layer_1"], metrics, list(range(48)), {},
            topk={"embed": TopkLayout(8, 8, 48), "layer_1": TopkLayout(8, 8, 48)},
            value_dtype=dtype,
        )  # fmt: skip
        estimate = disk_space.spec_estimate(spec, plan.planned_rows, 4096)
        assert estimate.point_token_bytes == per_point
        assert estimate.compaction_bytes == plan.planned_rows * 48 * np.dtype(dtype).itemsize


def read_half_arrays(run: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(run / "store.zarr", mode="r")
    return {
        f"{point}/{name}": decode(array[:], encoding_of(array.attrs))
        for point in open_store(run).points
        for name in HALF
        if isinstance(array := root[f"metrics/{point}/{name}"], zarr.Array)
    }


def half_bytes(run: Path) -> int:
    store = run / "store.zarr" / "metrics"
    return sum(allocated_bytes(store / p / n) for p in open_store(run).points for n in HALF)


def test_bf16_values_take_half_the_bytes_and_read_back_bit_for_bit(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bf16 run stored as today's float32 and as bf16 bits: equal values, half size."""
    points = ["--points", "embed,middle,last.mlp_act", "--dtype", "bfloat16", "--no-compact"]
    assert collect(tiny_llama, tmp_path / "half", *points).exit_code == 0
    with monkeypatch.context() as patch:  # the arrays as every store before held them
        patch.setattr("zipfstage.collect.plan.half_dtype", lambda dtype: "float32")
        assert collect(tiny_llama, tmp_path / "full", *points).exit_code == 0
    root = zarr.open_group(tmp_path / "half" / "store.zarr", mode="r")
    assert root["metrics/layer_3.mlp_act/channel_wise"].dtype == np.uint16
    assert root["metrics/layer_3.mlp_act/topk_abs"].attrs["encoding"] == "bfloat16"
    assert root["metrics/layer_3.mlp_act/rms"].dtype == np.float32  # computed: stays float32
    full, half = read_half_arrays(tmp_path / "full"), read_half_arrays(tmp_path / "half")
    assert full.keys() == half.keys() and full["embed/channel_wise"].dtype == np.float32
    for name, values in full.items():
        assert half[name].dtype == np.float32
        np.testing.assert_array_equal(half[name].view(np.uint32), values.view(np.uint32))
    assert half_bytes(tmp_path / "half") <= 0.52 * half_bytes(tmp_path / "full")
    # the readers zipfstage uses decode them; a plain reader follows the attribute's recipe
    reader = open_store(tmp_path / "half")
    np.testing.assert_array_equal(
        reader.metric("embed", "channel_wise"),
        open_store(tmp_path / "full").metric("embed", "channel_wise"),
    )
    x = root["metrics/embed/channel_wise"][:]  # noqa: F841 (the name the recipe uses)
    recipe = eval(root["metrics/embed/channel_wise"].attrs["decode"])
    np.testing.assert_array_equal(recipe, full["embed/channel_wise"])
    # compaction keeps the bits (and the size, compressed)
    result = runner.invoke(app, ["compact", "--out", str(tmp_path / "half")])
    assert result.exit_code == 0, result.output
    compacted = read_half_arrays(tmp_path / "half")
    for name, values in full.items():
        np.testing.assert_array_equal(compacted[name].view(np.uint32), values.view(np.uint32))
    assert root["metrics/embed/channel_wise"].dtype == np.uint16


def test_fp16_values_are_float16_arrays(tiny_llama: Path, tmp_path: Path) -> None:
    result = collect(tiny_llama, tmp_path, "--dtype", "float16")
    assert result.exit_code == 0, result.output
    root = zarr.open_group(tmp_path / "store.zarr", mode="r")
    assert root["metrics/embed/channel_wise"].dtype == np.float16
    assert root["metrics/embed/topk_abs"].dtype == np.float16
    assert "encoding" not in root["metrics/embed/topk_abs"].attrs
    assert open_store(tmp_path).metric("embed", "channel_wise").dtype == np.float32


def test_encode_refuses_values_it_cannot_hold() -> None:
    exact = np.array([1.0, -0.5, np.nan, 2.0**127, 2.0**-133], dtype=np.float32)
    assert np.array_equal(
        decode(encode(exact, np.dtype("uint16"), "bfloat16"), "bfloat16"), exact, equal_nan=True
    )
    with pytest.raises(ValueError, match="bfloat16"):
        encode(np.array([1.0 + 2**-20], dtype=np.float32), np.dtype("uint16"), "bfloat16")
    with pytest.raises(ValueError, match="float16"):
        encode(np.array([1.0 + 2.0**-12], dtype=np.float32), np.dtype("float16"), None)


def test_a_float32_store_still_resumes_and_reads(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bf16 store written before 16-bit arrays (float32 ones) resumes into float32."""
    points = ["--points", "embed", "--dtype", "bfloat16", "--no-compact"]
    with monkeypatch.context() as patch:
        patch.setattr("zipfstage.collect.plan.half_dtype", lambda dtype: "float32")
        assert collect(tiny_llama, tmp_path / "old", *points).exit_code == 0
    before = open_store(tmp_path / "old").metric("embed", "channel_wise")
    uncommit(tmp_path / "old", 3)
    group = zarr.open_group(tmp_path / "old" / "store.zarr", mode="r")
    result = collect(tiny_llama, tmp_path / "old", *points)
    assert result.exit_code == 0, result.output
    assert group["metrics/embed/channel_wise"].dtype == np.float32
    np.testing.assert_array_equal(
        open_store(tmp_path / "old").metric("embed", "channel_wise"), before
    )


def test_a_corpus_that_ends_early_is_said_and_recorded(tiny_llama: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "short.txt"
    corpus.write_text(" ".join(f"word{i}" for i in range(600)))
    args = ["collect", "--model", str(tiny_llama), "--data", str(corpus), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, *RUN, "--max-tokens", "100000"])
    assert result.exit_code == 0, result.output
    info = open_store(tmp_path).info
    n = info["n_tokens"]
    assert 0 < n < 99_968 and info["planned_tokens"] == 99_968 and info["corpus_ended"] is True
    line = " ".join(result.output.split())  # rich wraps long lines
    assert f"collected {n:,} of 99,968 planned tokens into" in line
    assert "the corpus ended" in line
    result = runner.invoke(app, [*args, *RUN, "--max-tokens", "100000"])
    assert "planned tokens: the corpus ended); nothing to do" in " ".join(result.output.split())
    # a corpus long enough: no such words
    result = collect(tiny_llama, tmp_path / "full", "--max-tokens", "1024")
    assert "collected 1,024 tokens into" in " ".join(result.output.split())
    assert "corpus ended" not in result.output
    assert open_store(tmp_path / "full").info["corpus_ended"] is False

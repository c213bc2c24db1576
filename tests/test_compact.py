"""Compaction: same values in O(arrays) files, readable as before, and safe to kill at any step."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.synthetic_store import make_synthetic_store, reseal
from zipfstage.cli import app
from zipfstage.store import compact
from zipfstage.store.compact import compact_store, compactable_arrays, count_files, work_dir
from zipfstage.store.fits import read_fit_curves, read_fit_records
from zipfstage.store.layout import ROOT_ATTR, store_path
from zipfstage.store.lock import LOCK_NAME
from zipfstage.store.reader import open_store

runner = CliRunner()


def _store(out: Path) -> Path:
    """Eight batches, with NaN rows in one metric and a partly NaN channel column."""
    path = make_synthetic_store(out, n_batches=8, batch_size=2, seq_len=32, channels=3)
    root = zarr.open_group(path, mode="r+")
    root["metrics/embed/rms"][10:70] = np.nan  # type: ignore[index]
    root["metrics/layer_1/channel_wise"][5:300, 1] = np.nan  # type: ignore[index]
    reseal(path)  # the edits above are the test's data, not damage
    return path


def _snapshot(path: Path) -> dict[str, tuple[np.ndarray, dict, object, object]]:
    root = zarr.open_group(path, mode="r")
    out = {}
    for name in compactable_arrays(path):
        array = root[name]
        assert isinstance(array, zarr.Array)
        meta = (dict(array.attrs), array.metadata.dimension_names)  # type: ignore[union-attr]
        out[name] = (np.asarray(array[:]), *meta, array.fill_value)
    return out


def _assert_same(path: Path, before: dict[str, tuple[np.ndarray, dict, object, object]]) -> None:
    after = _snapshot(path)
    assert set(after) == set(before)
    for name, (values, attrs, dims, fill) in before.items():
        got, got_attrs, got_dims, got_fill = after[name]
        assert got.dtype == values.dtype and got.shape == values.shape, name
        np.testing.assert_array_equal(got, values, err_msg=name)  # NaN equal to NaN
        assert (got_attrs, got_dims) == (attrs, dims), name
        assert np.array_equal(np.asarray(got_fill), np.asarray(fill), equal_nan=True), name


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return _store(tmp_path)


def test_same_values_in_a_file_or_two_per_array(store: Path) -> None:
    before = _snapshot(store)
    assert np.isnan(before["metrics/embed/rms"][0]).sum() == 60
    info = zarr.open_group(store, mode="r").attrs[ROOT_ATTR]
    n_files = count_files(store)
    seen: list[tuple[int, int]] = []
    result = compact_store(store, progress=lambda done, total: seen.append((done, total)))
    _assert_same(store, before)
    assert seen[-1] == (len(before), len(before)) and result.arrays == len(before) == 17
    assert result.files_before == n_files and result.files_after == count_files(store)
    for name in before:  # zarr.json and one shard, instead of one chunk per batch
        assert count_files(store / name) == 2, name
        array = zarr.open_array(store / name, mode="r")
        assert array.chunks[0] >= array.shape[0]  # small arrays: one inner chunk
        assert zarr.open_array(store / name, mode="r").shards is not None
    assert n_files >= result.files_after  # collect's chunks hold many batches: few files here
    root = zarr.open_group(store, mode="r")
    assert root.attrs[ROOT_ATTR] == {**info, "layout": "sharded"}  # type: ignore[dict-item]
    assert not work_dir(store).exists()


def test_large_arrays_get_several_shards(store: Path) -> None:
    before = _snapshot(store)
    batch = 64 * 4  # bytes of one batch of a scalar metric
    compact_store(store, shard_bytes=3 * batch, inner_bytes=batch)
    _assert_same(store, before)
    rms = zarr.open_array(store / "metrics/embed/rms", mode="r")
    assert rms.chunks == (64,) and rms.shards == (192,)  # 8 chunks -> 3 shards of 3, 3, 2
    assert count_files(store / "metrics/embed/rms") == 1 + 3


@pytest.mark.parametrize(
    ("shape", "chunks", "inner", "shard"),
    [
        ((2_000_000,), (2048,), (262_144,), (2_097_152,)),  # 1 MiB inner chunks, one shard
        ((2_000_000, 64), (2048, 64), (4096, 64), (1_003_520, 64)),  # 512 MB: two even shards
        ((977,), (1,), (977,), (977,)),  # progress: a single chunk
        ((100,), (2048,), (2048,), (2048,)),  # fewer rows than a batch
    ],
)
def test_chunk_and_shard_shapes_are_whole_batches(
    shape: tuple[int, ...], chunks: tuple[int, ...], inner: tuple, shard: tuple
) -> None:
    got = compact.compact_chunks(shape, chunks, 4, compact.INNER_BYTES, compact.SHARD_BYTES)
    assert got == (inner, shard)
    assert got[0][0] % chunks[0] == 0 and got[1][0] % got[0][0] == 0


def test_plain_zarr_and_the_reader_read_it_as_before(store: Path) -> None:
    out = store.parent
    reader = open_store(out)
    expected = {m: reader.metric("layer_3", m, skip_positions=1) for m in reader.metrics}
    ids, n_tokens = reader.token_ids(), reader.n_tokens
    plain = zarr.open_group(store, mode="r")["metrics/embed/rms"][:]  # type: ignore[index]
    compact_store(store)
    again = zarr.open_group(store, mode="r")["metrics/embed/rms"][:]  # type: ignore[index]
    np.testing.assert_array_equal(again, plain)
    reader = open_store(out)
    assert reader.n_tokens == n_tokens and reader.complete
    np.testing.assert_array_equal(reader.token_ids(), ids)
    for metric, values in expected.items():
        np.testing.assert_array_equal(reader.metric("layer_3", metric, skip_positions=1), values)


def test_fit_and_plot_run_on_a_compacted_store(store: Path) -> None:
    out = store.parent
    compact_store(store)
    args = ["--out", str(out), "--points", "embed,layer_3", "--metrics", "rms,channel_wise"]
    fitted = runner.invoke(app, ["fit", *args, "--workers", "1"])
    assert fitted.exit_code == 0, fitted.output
    assert read_fit_records(out)["layer_3"]["rms"]["status"] == "ok"
    assert "scan_ks" in read_fit_curves(out, "embed", "rms")
    plotted = runner.invoke(app, ["plot", *args, "--dpi", "30", "--figures", "all"])
    assert plotted.exit_code == 0, plotted.output
    assert (out / "plots" / "diagnostics" / "layer_3__rms.png").stat().st_size > 0


def _killing(real: Callable[..., None], calls: list[int], at: int) -> Callable[..., None]:
    def step(*args: object) -> None:
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt("killed")
        real(*args)

    return step


@pytest.mark.parametrize("at", [1, 2, 3, 4, 5, 6, 17, 45])
def test_a_kill_at_any_swap_step_recovers_on_rerun(
    store: Path, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """Steps per array: old -> trash, new -> final, delete trash (17 arrays, 51 steps)."""
    before = _snapshot(store)
    calls: list[int] = []
    with monkeypatch.context() as patch:
        patch.setattr(compact, "_rename", _killing(compact._rename, calls, at))
        patch.setattr(compact, "_remove", _killing(compact._remove, calls, at))
        with pytest.raises(KeyboardInterrupt):
            compact_store(store)
    info = zarr.open_group(store, mode="r").attrs[ROOT_ATTR]
    assert "layout" not in info  # type: ignore[operator]
    compact_store(store)
    _assert_same(store, before)
    assert all(zarr.open_array(store / name, mode="r").shards for name in before)
    assert not work_dir(store).exists()


def test_a_kill_while_writing_a_copy_leaves_the_old_array(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(store)
    with monkeypatch.context() as patch:
        patch.setattr(compact, "_verify", _killing(lambda *a: None, [], 1))
        with pytest.raises(KeyboardInterrupt):
            compact_store(store)
    _assert_same(store, before)  # nothing swapped yet: every array is the original
    compact_store(store)
    _assert_same(store, before)


def test_a_copy_that_differs_is_never_swapped_in(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(store)
    real_create = zarr.create_array

    class Corrupting:
        def __init__(self, array: zarr.Array) -> None:
            self.array = array

        def __setitem__(self, rows: slice, data: np.ndarray) -> None:
            self.array[rows] = data + 1

    def create(**kwargs: object) -> Corrupting:
        return Corrupting(real_create(**kwargs))  # type: ignore[arg-type]

    monkeypatch.setattr(compact.zarr, "create_array", create)
    with pytest.raises(RuntimeError, match="differs"):
        compact_store(store)
    _assert_same(store, before)


def test_cli_compacts_then_says_already_compacted(store: Path) -> None:
    out = store.parent
    first = runner.invoke(app, ["compact", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "compacted 17 arrays" in first.output
    again = runner.invoke(app, ["compact", "--out", str(out)])
    assert again.exit_code == 0 and "already compacted" in again.output


def test_cli_refuses_a_missing_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compact", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no store" in result.output
    assert not (tmp_path / "none").exists()


def test_cli_refuses_an_incomplete_store_and_writes_nothing(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=3, complete=False)
    n_files = count_files(store_path(tmp_path))
    result = runner.invoke(app, ["compact", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and "not complete" in result.output
    assert count_files(store_path(tmp_path)) == n_files
    assert not (tmp_path / LOCK_NAME).exists()
    info = json.loads((store_path(tmp_path) / "zarr.json").read_text())
    assert "layout" not in info["attributes"][ROOT_ATTR]

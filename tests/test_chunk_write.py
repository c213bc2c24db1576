"""Direct whole-chunk writes give the very bytes zarr writes, and fall back to zarr otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from zipfstage.store.chunk_write import ChunkFile
from zipfstage.store.writer import COMPRESSORS

#: stores collected before lz4 became the codec; resuming one still writes zstd chunks
OLDER_COMPRESSORS = [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")]


def make(
    root: zarr.Group,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    compressors: list[BloscCodec] = COMPRESSORS,
    separator: str = "/",
) -> zarr.Array:
    return root.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=0,
        compressors=compressors,
        chunk_key_encoding={"name": "default", "configuration": {"separator": separator}},
    )


@pytest.mark.parametrize(
    ("dtype", "width"), [("float32", None), ("int32", 8), ("int8", 8), ("float32", 5)]
)
@pytest.mark.parametrize("codec", [COMPRESSORS, OLDER_COMPRESSORS], ids=["lz4", "zstd"])
@pytest.mark.parametrize("separator", ["/", "."])
def test_direct_chunk_bytes_equal_zarrs(
    tmp_path: Path, dtype: str, width: int | None, codec: list[BloscCodec], separator: str
) -> None:
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    shape, chunks = ((64,), (16,)) if width is None else ((64, width), (16, width))
    by_zarr = make(root, "a", dtype, shape, chunks, codec, separator)
    direct = make(root, "b", dtype, shape, chunks, codec, separator)
    data = (np.random.default_rng(0).normal(size=chunks) * 50).astype(dtype)
    by_zarr[16:32] = data
    writer = ChunkFile.at(tmp_path / "s.zarr/b")
    assert writer == ChunkFile.of(direct)  # from zarr.json alone, as from the opened array
    assert writer is not None and writer.write(16, data)
    key = ["c", "1"] + ["0"] * (len(chunks) - 1)
    key = [".".join(key)] if separator == "." else key
    assert (tmp_path / "s.zarr/b").joinpath(*key).read_bytes() == (tmp_path / "s.zarr/a").joinpath(
        *key
    ).read_bytes()
    reopened = zarr.open_group(tmp_path / "s.zarr", mode="r")["b"]
    np.testing.assert_array_equal(np.asarray(reopened[16:32]), data)  # type: ignore[index]
    assert (np.asarray(reopened[:16]) == 0).all()  # type: ignore[index]


def test_partial_chunk_is_left_to_zarr(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    make(root, "a", "float32", (64,), (16,))
    writer = ChunkFile.at(tmp_path / "s.zarr/a")
    assert writer is not None
    assert not writer.write(16, np.ones(10, dtype=np.float32))  # short last batch
    assert not writer.write(8, np.ones(16, dtype=np.float32))  # not on a chunk boundary
    assert not (tmp_path / "s.zarr/a/c").exists()


def test_other_codecs_are_left_to_zarr(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    plain = root.create_array("a", shape=(64,), chunks=(16,), dtype="float32")
    assert ChunkFile.of(plain) is None and ChunkFile.at(tmp_path / "s.zarr/a") is None
    assert ChunkFile.at(tmp_path / "s.zarr") is None  # a group
    assert ChunkFile.at(tmp_path / "s.zarr/missing") is None


@pytest.mark.parametrize(("dtype", "width"), [("float32", None), ("int32", 8), ("int8", 3)])
@pytest.mark.parametrize("separator", ["/", "."])
def test_rows_written_in_place_equal_zarrs(
    tmp_path: Path, dtype: str, width: int | None, separator: str
) -> None:
    """Uncompressed chunks of four batches: each batch's rows land at their offset, whatever
    the order, and once all four are written the file is byte for byte what zarr writes."""
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    shape, chunks = ((128,), (64,)) if width is None else ((128, width), (64, width))
    by_zarr = make(root, "a", dtype, shape, chunks, [], separator)
    make(root, "b", dtype, shape, chunks, [], separator)
    writer = ChunkFile.at(tmp_path / "s.zarr/b")
    assert writer is not None and writer.codec is None
    rng = np.random.default_rng(1)
    key = ["c", "0"] + ["0"] * (len(chunks) - 1)
    key = [".".join(key)] if separator == "." else key
    written = []
    for start in (16, 48, 0, 32):  # out of order, as workers commit
        rows = (rng.normal(size=(16, *chunks[1:])) * 50).astype(dtype)
        by_zarr[start : start + 16] = rows
        assert writer.write(start, rows)
        written.append(slice(start, start + 16))
        reopened = zarr.open_array(tmp_path / "s.zarr/b", mode="r")
        for rows_written in written:
            np.testing.assert_array_equal(reopened[rows_written], by_zarr[rows_written])
    files = [(tmp_path / "s.zarr" / name).joinpath(*key).read_bytes() for name in "ab"]
    assert files[0] == files[1]
    np.testing.assert_array_equal(np.asarray(reopened[:64]), np.asarray(by_zarr[:64]))
    assert not writer.write(56, np.zeros((16, *chunks[1:]), dtype=dtype))  # straddles two chunks


def test_a_second_writer_never_refills_a_chunk(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    root.create_array(
        "a", shape=(64,), chunks=(64,), dtype="float32", fill_value=float("nan"), compressors=None
    )
    first, second = ChunkFile.at(tmp_path / "s.zarr/a"), ChunkFile.at(tmp_path / "s.zarr/a")
    assert first is not None and second is not None
    assert first.write(0, np.ones(16, dtype=np.float32))
    second._make_chunk(*second._place(0))  # lost the race: the chunk exists already
    assert second.write(16, np.full(16, 2, dtype=np.float32))
    values = np.asarray(zarr.open_array(tmp_path / "s.zarr/a", mode="r")[:])
    assert (values[:16] == 1).all() and (values[16:32] == 2).all()
    assert (tmp_path / "s.zarr/a/c/0").stat().st_size == 64 * 4  # whole from the start
    assert sorted(p.name for p in (tmp_path / "s.zarr/a/c").iterdir()) == ["0"]  # no leftovers

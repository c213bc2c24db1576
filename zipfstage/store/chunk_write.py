"""Write a batch's rows of a local Zarr v3 array straight to its chunk file, bypassing zarr.

A batch touches hundreds of arrays, and zarr-python spends about a millisecond of CPU per array
on indexing, async tasks and its codec pipeline. Two layouts are written directly, in the bytes
zarr itself would write once every row is written (tests check they are identical):

- uncompressed (`bytes` codec only; what collect creates): a chunk holds many batches; a batch
  writes its rows in place at their offset. A chunk file is created once at its full size
  (sparse: unwritten rows read as zero bytes, not the fill value; token ids' chunks are
  filled with -1, what `zipfstage check` looks for) and linked into place
  atomically, so a reader sees either no file or a whole one, and two workers never both make
  it. Batches write disjoint bytes, so a kill damages at most the batch in flight (not yet
  committed), and workers may share a chunk.
- compressed (`bytes` + `blosc`; stores collected before): a write covering exactly one chunk is
  encoded and replaces the chunk file atomically.

Anything else (a partial compressed chunk, other codecs, a remote store) returns False so the
caller falls back to zarr.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.storage import LocalStore

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@dataclass(frozen=True)
class ChunkFile:
    """Where an array's chunks live on disk and how to encode one."""

    folder: Path
    chunks: tuple[int, ...]
    dtype: np.dtype
    #: None: uncompressed chunks, written in place
    codec: Blosc | None
    #: the chunk key's separator: "/" (c/<row>/0, folders) or "." (c.<row>.0 beside zarr.json)
    separator: str = "/"
    fill_value: float = 0.0
    #: create chunks holding the fill value rather than sparse (zero bytes): token ids, so
    #: that a chunk lost and made again by a later batch reads -1 where `check` looks
    filled: bool = False

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFile | None:
        """The direct writer for `array`, or None when only zarr can write it."""
        store = array.store_path.store
        if array.metadata.zarr_format != 3 or not isinstance(store, LocalStore):
            return None
        return cls._from_metadata(Path(store.root) / array.path, array.metadata)

    @classmethod
    def at(cls, folder: Path, filled: bool = False) -> ChunkFile | None:
        """The direct writer for the local array in `folder`, from its zarr.json alone: opening
        hundreds of arrays through zarr costs about a second at the start of every collect.
        None when the folder holds no Zarr v3 array (zarr then reports what it holds)."""
        try:
            document = json.loads((folder / "zarr.json").read_bytes())
            if document.get("node_type") != "array" or document.get("zarr_format") != 3:
                return None
            document.pop("attributes", None)  # the only part arrays of a store differ in
            layout = _layout_of(json.dumps(document, sort_keys=True))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return None if layout is None else cls(folder, *layout, filled=filled)

    @classmethod
    def _from_metadata(cls, folder: Path, metadata: ArrayV3Metadata) -> ChunkFile | None:
        layout = _layout(metadata)
        return None if layout is None else cls(folder, *layout)

    def write(self, start: int, data: np.ndarray) -> bool:
        """Write rows start.. of the array; False (nothing written) when zarr must do it."""
        index, offset = divmod(start, self.chunks[0])
        if data.shape[1:] != self.chunks[1:] or offset + data.shape[0] > self.chunks[0]:
            return False
        raw = np.ascontiguousarray(data, dtype=self.dtype)
        if self.codec is None:
            row_bytes = math.prod(self.chunks[1:]) * self.dtype.itemsize
            self._write_in_place(index, offset * row_bytes, raw)
            return True
        if data.shape != self.chunks or offset:
            return False
        folder, name = self._place(index)
        staging = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        _write_new(staging, memoryview(self.codec.encode(raw.view(np.uint8).reshape(-1))))
        os.replace(staging, os.path.join(folder, name))
        return True

    def _place(self, index: int) -> tuple[str, str]:
        """(folder, file name) of chunk `index` along rows."""
        key = ["c", str(index)] + ["0"] * (len(self.chunks) - 1)
        if self.separator == ".":
            key = [".".join(key)]
        return os.path.join(self.folder, *key[:-1]), key[-1]

    def _write_in_place(self, index: int, offset: int, rows: np.ndarray) -> None:
        """`rows` at byte `offset` of uncompressed chunk `index`, made first if it is missing.

        Plain `os` calls: a collect writes hundreds of arrays per batch, and pathlib's and
        `open`'s objects cost as much CPU as the file system itself.
        """
        folder, name = self._place(index)
        path = os.path.join(folder, name)
        try:
            descriptor = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            self._make_chunk(folder, name)
            descriptor = os.open(path, os.O_WRONLY)
        try:
            _write_all(descriptor, rows.data.cast("B"), offset)
        finally:
            os.close(descriptor)

    def _make_chunk(self, folder: str, name: str) -> None:
        """A whole chunk, linked into place unless another writer was first.

        Unless `filled`, the file is sized with `ftruncate`, not filled: its rows read as zero
        bytes until their batch writes them. Writing the fill value first wrote every byte
        twice, and new file pages cost about 1-2.5 ms per MB here (the fill was 60 % of a
        batch's write time). Rows of uncommitted batches are never read (`StoreReader` masks
        by `progress`), and a finished collect has written every row of its arrays' shape.
        """
        staging = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        if self.filled:
            _write_new(staging, np.full(self.chunks, self.fill_value, self.dtype).data.cast("B"))
        else:
            _make_sparse(staging, math.prod(self.chunks) * self.dtype.itemsize)
        try:
            os.link(staging, os.path.join(folder, name))
        except FileExistsError:
            pass  # another worker made it first
        finally:
            os.unlink(staging)


_Layout = tuple[tuple[int, ...], np.dtype, Blosc | None, str, float]


@functools.lru_cache(maxsize=256)
def _layout_of(document: str) -> _Layout | None:
    """`_layout` of a zarr.json without its attributes: parsed once per distinct layout, not
    once per array (zarr's parser costs about 0.3 ms; a collect opens hundreds of arrays)."""
    return _layout(ArrayV3Metadata.from_dict(json.loads(document)))


def _layout(metadata: ArrayV3Metadata) -> _Layout | None:
    """(chunk shape, dtype, codec, separator, fill value) when `ChunkFile` can write the array
    directly."""
    codecs = metadata.codecs
    encoding = metadata.chunk_key_encoding
    dtype = np.dtype(metadata.dtype.to_native_dtype())
    if (
        len(codecs) not in (1, 2)
        or not isinstance(codecs[0], BytesCodec)
        or (len(codecs) == 2 and not isinstance(codecs[1], BloscCodec))
        or getattr(encoding, "name", None) != "default"
        or getattr(encoding, "separator", None) not in ("/", ".")
        or dtype.byteorder == ">"
        or getattr(codecs[0].endian, "value", "little") != "little"
        or not isinstance(metadata.chunk_grid, RegularChunkGrid)
    ):
        return None
    blosc = codecs[1] if len(codecs) == 2 else None
    codec = _blosc(blosc, dtype) if isinstance(blosc, BloscCodec) else None
    return (
        tuple(metadata.chunk_grid.chunk_shape),
        dtype,
        codec,
        str(getattr(encoding, "separator", "/")),
        float(metadata.fill_value),
    )


def _blosc(blosc: BloscCodec, dtype: np.dtype) -> Blosc:
    return Blosc.from_config(
        {
            "cname": blosc.cname.name,
            "clevel": blosc.clevel,
            "shuffle": _SHUFFLE[blosc.shuffle.name],
            "blocksize": blosc.blocksize,
            "typesize": blosc.typesize or dtype.itemsize,
        }
    )


def _write_new(path: str, content: memoryview) -> None:
    """A new file (or one truncated) holding `content`."""
    descriptor = _create(path)
    try:
        _write_all(descriptor, content, 0)
    finally:
        os.close(descriptor)


def _make_sparse(path: str, size: int) -> None:
    """A new file of `size` zero bytes that takes no pages until written."""
    descriptor = _create(path)
    try:
        os.ftruncate(descriptor, size)
    finally:
        os.close(descriptor)


def _create(path: str) -> int:
    """A descriptor of the new (or truncated) file `path`; makes its folder if it is missing."""
    try:
        return os.open(path, _CREATE, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _CREATE, 0o644)


def _write_all(descriptor: int, content: memoryview, offset: int) -> None:
    while content:
        written = os.pwrite(descriptor, content, offset)
        content, offset = content[written:], offset + written

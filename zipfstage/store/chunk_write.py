"""Write one whole chunk of a local Zarr v3 array straight to its file, bypassing zarr's setitem.

A batch touches one chunk in each of hundreds of arrays, and zarr-python spends about a
millisecond of CPU per array on indexing, async tasks and its codec pipeline; on a CPU run that
competes with the forward pass. When a write covers exactly one chunk of an array whose codecs are
the plain `bytes` + `blosc` chain collect creates, this module encodes the chunk with the same
Blosc settings and replaces the chunk file atomically (the bytes zarr itself would write; a test
checks they are identical). Anything else (a partial chunk, other codecs, a remote store) returns
None so the caller falls back to zarr.
"""

from __future__ import annotations

import json
import os
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
    codec: Blosc
    #: the chunk key's separator: "/" (c/<row>/0, folders) or "." (c.<row>.0 beside zarr.json)
    separator: str = "/"

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFile | None:
        """The direct writer for `array`, or None when only zarr can write it."""
        store = array.store_path.store
        if array.metadata.zarr_format != 3 or not isinstance(store, LocalStore):
            return None
        return cls._from_metadata(Path(store.root) / array.path, array.metadata)

    @classmethod
    def at(cls, folder: Path) -> ChunkFile | None:
        """The direct writer for the local array in `folder`, from its zarr.json alone: opening
        hundreds of arrays through zarr costs about a second at the start of every collect.
        None when the folder holds no Zarr v3 array (zarr then reports what it holds)."""
        try:
            document = json.loads((folder / "zarr.json").read_bytes())
            if document.get("node_type") != "array" or document.get("zarr_format") != 3:
                return None
            metadata = ArrayV3Metadata.from_dict(document)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return cls._from_metadata(folder, metadata)

    @classmethod
    def _from_metadata(cls, folder: Path, metadata: ArrayV3Metadata) -> ChunkFile | None:
        codecs = metadata.codecs
        encoding = metadata.chunk_key_encoding
        dtype = np.dtype(metadata.dtype.to_native_dtype())
        if (
            len(codecs) != 2
            or not isinstance(codecs[0], BytesCodec)
            or not isinstance(codecs[1], BloscCodec)
            or getattr(encoding, "name", None) != "default"
            or getattr(encoding, "separator", None) not in ("/", ".")
            or dtype.byteorder == ">"
            or not isinstance(metadata.chunk_grid, RegularChunkGrid)
        ):
            return None
        blosc = codecs[1]
        codec = Blosc.from_config(
            {
                "cname": blosc.cname.name,
                "clevel": blosc.clevel,
                "shuffle": _SHUFFLE[blosc.shuffle.name],
                "blocksize": blosc.blocksize,
                "typesize": blosc.typesize or dtype.itemsize,
            }
        )
        separator = str(getattr(encoding, "separator", "/"))
        return cls(folder, tuple(metadata.chunk_grid.chunk_shape), dtype, codec, separator)

    def write(self, start: int, data: np.ndarray) -> bool:
        """Write rows start.. as one chunk; False (nothing written) unless they are exactly one.

        Plain `os` calls: a collect writes hundreds of chunks per batch, and pathlib's and
        `open`'s objects cost as much CPU as the file system itself.
        """
        if data.shape != self.chunks or start % self.chunks[0]:
            return False
        key = ["c", str(start // self.chunks[0])] + ["0"] * (len(self.chunks) - 1)
        if self.separator == ".":
            key = [".".join(key)]
        folder = os.path.join(self.folder, *key[:-1])
        raw = np.ascontiguousarray(data, dtype=self.dtype).view(np.uint8).reshape(-1)
        encoded = memoryview(self.codec.encode(raw))
        staging = os.path.join(folder, f".{key[-1]}.{os.getpid()}.tmp")
        try:
            descriptor = os.open(staging, _CREATE, 0o644)
        except FileNotFoundError:  # the first chunk in this folder
            os.makedirs(folder, exist_ok=True)
            descriptor = os.open(staging, _CREATE, 0o644)
        try:
            while encoded:
                encoded = encoded[os.write(descriptor, encoded) :]
        finally:
            os.close(descriptor)
        os.replace(staging, os.path.join(folder, key[-1]))
        return True

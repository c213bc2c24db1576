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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@dataclass(frozen=True)
class ChunkFile:
    """Where an array's chunks live on disk and how to encode one."""

    folder: Path
    chunks: tuple[int, ...]
    dtype: np.dtype
    codec: Blosc

    @classmethod
    def of(cls, array: zarr.Array) -> ChunkFile | None:
        """The direct writer for `array`, or None when only zarr can write it."""
        metadata = array.metadata
        store = array.store_path.store
        if metadata.zarr_format != 3 or not isinstance(store, LocalStore):
            return None
        codecs = metadata.codecs
        encoding = metadata.chunk_key_encoding
        if (
            len(codecs) != 2
            or not isinstance(codecs[0], BytesCodec)
            or not isinstance(codecs[1], BloscCodec)
            or getattr(encoding, "name", None) != "default"
            or getattr(encoding, "separator", None) != "/"
            or np.dtype(array.dtype).byteorder == ">"
        ):
            return None
        blosc = codecs[1]
        codec = Blosc.from_config(
            {
                "cname": blosc.cname.name,
                "clevel": blosc.clevel,
                "shuffle": _SHUFFLE[blosc.shuffle.name],
                "blocksize": blosc.blocksize,
                "typesize": blosc.typesize,
            }
        )
        folder = Path(store.root) / array.path
        return cls(folder, tuple(array.chunks), np.dtype(array.dtype), codec)

    def write(self, start: int, data: np.ndarray) -> bool:
        """Write rows start.. as one chunk; False (nothing written) unless they are exactly one."""
        if data.shape != self.chunks or start % self.chunks[0]:
            return False
        key = [str(start // self.chunks[0])] + ["0"] * (len(self.chunks) - 1)
        path = self.folder.joinpath("c", *key)
        raw = np.ascontiguousarray(data, dtype=self.dtype).view(np.uint8).reshape(-1)
        encoded = self.codec.encode(raw)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_bytes(encoded)
        os.replace(staging, path)
        return True

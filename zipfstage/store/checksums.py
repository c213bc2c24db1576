"""Per-batch, per-array CRC32C checksums of collect's in-place chunks, and the seal of each batch.

Collect writes each batch's rows in place into uncompressed chunks that hold many batches, so no
chunk-level checksum can exist while a store is being filled (zarr's `crc32c` codec covers a whole
chunk, and a chunk changes with every batch). Instead each batch writes, before its commit, one
row of `batch_checksum` (uint32 [batches, arrays + 1]): the CRC32C of its rows' bytes in every
data array (the column order is the array's "arrays" attribute), and last the batch's *seal*, the
CRC32C of that row together with the row count it commits and its token digest. The row is
written in place like the data (one `pwrite`, about 4 bytes per array), so it adds no file per
batch, and a reader can verify any batch alone. The seal makes a changed `progress` entry or
`batch_digest` detectable too. A compacted store keeps the table and adds zarr's `crc32c` codec
to every chunk and shard index (`zipfstage.store.compact`).
"""

from __future__ import annotations

from dataclasses import dataclass

import google_crc32c
import numpy as np
import zarr

from zipfstage.store.layout import CHECKSUMS, array_at

#: the attribute of `batch_checksum` listing its columns' arrays
COLUMNS_ATTR = "arrays"


def crc(data: np.ndarray) -> int:
    """CRC32C of an array's bytes as stored (C order, its own dtype)."""
    return int(google_crc32c.value(np.ascontiguousarray(data).reshape(-1).view(np.uint8)))


def seal(row: np.ndarray, count: int, digest: int) -> int:
    """CRC32C of a batch's checksum row (without the seal), its committed rows and its digest."""
    tail = np.array([count], dtype="<i4").tobytes() + np.array([digest], dtype="<i8").tobytes()
    return int(google_crc32c.extend(crc(np.asarray(row, dtype="<u4")), tail))


def checksum_row(crcs: np.ndarray, count: int, digest: int) -> np.ndarray:
    """[crc of array 0, ..., crc of array A-1, seal] as uint32, ready to write."""
    row = np.empty(crcs.size + 1, dtype=np.uint32)
    row[:-1] = crcs
    row[-1] = seal(crcs, count, digest)
    return row


def checksum_columns(root: zarr.Group) -> dict[str, int]:
    """{array: its column} of the store's checksum table; empty when it has none."""
    if CHECKSUMS not in root:
        return {}
    names = array_at(root, CHECKSUMS).attrs.get(COLUMNS_ATTR, [])
    return {str(name): i for i, name in enumerate(names if isinstance(names, list) else [])}


@dataclass(frozen=True)
class ChecksumTable:
    """The checksums of the first `rows` batches, read once; None where a store has none."""

    columns: dict[str, int]
    rows: np.ndarray

    @classmethod
    def read(cls, root: zarr.Group, n_batches: int) -> ChecksumTable | None:
        """The table of a store that has one (stores collected before checksums have none)."""
        if CHECKSUMS not in root:
            return None
        array = array_at(root, CHECKSUMS)
        rows = np.asarray(array[: min(n_batches, array.shape[0])])
        return cls(checksum_columns(root), rows)

    def covers(self, name: str) -> bool:
        return name in self.columns

    def matches(self, name: str, batch: int, data: np.ndarray) -> bool:
        """Whether rows `data` of batch `batch` in array `name` have their written checksum."""
        if batch >= self.rows.shape[0]:
            return False
        return int(self.rows[batch, self.columns[name]]) == crc(data)

    def sealed(self, batch: int, count: int, digest: int) -> bool:
        """Whether the batch's checksum row, committed row count and digest are as written."""
        if batch >= self.rows.shape[0]:
            return False
        row = self.rows[batch]
        return int(row[-1]) == seal(row[:-1], count, digest)

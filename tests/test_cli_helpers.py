"""The subprocess helpers' store probe: it must not turn a broken store into "nothing yet"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import committed_batches
from tests.synthetic_store import make_synthetic_store


def test_committed_batches_counts_and_never_hides_a_damaged_store(tmp_path: Path) -> None:
    assert committed_batches(tmp_path) == 0  # collect has not created the store yet
    make_synthetic_store(tmp_path, points=("embed",), n_batches=3, seq_len=8)
    assert committed_batches(tmp_path) == 3
    (tmp_path / "store.zarr" / "progress" / "zarr.json").write_text("{not json")
    with pytest.raises(Exception):  # noqa: B017 - whatever zarr raises, it must surface
        committed_batches(tmp_path)

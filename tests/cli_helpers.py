"""Running collect in subprocesses and comparing stores: shared by the resume and worker tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import zarr

from zipfstage.store import open_store


def small_collect_args(max_tokens: int, points: str, metrics: str = "all") -> list[str]:
    """Options for a quick collect on the pydoc corpus: 32-token sequences, 4 per batch."""
    return (
        f"--data pydoc --max-tokens {max_tokens} --seq-len 32 --batch-size 4 --points {points} "
        f"--metrics {metrics} --channels 4 -q"
    ).split()


def cli_env() -> dict[str, str]:
    """Offline, one thread per process: runs are reproducible bit for bit."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def spawn_collect(model: Path, out: Path, *args: str) -> subprocess.Popen[bytes]:
    """`python -m zipfstage collect --model MODEL --out OUT ARGS...` in the background."""
    command = [sys.executable, "-m", "zipfstage", "collect", "--model", str(model)]
    command += ["--out", str(out), *args]
    return subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def committed_batches(out: Path) -> int:
    """Batches committed so far: 0 until collect has created the progress array; any other
    failure to read it (a renamed or damaged array) is raised, never read as "nothing yet"."""
    store = out / "store.zarr"
    if not (store / "progress" / "zarr.json").exists():
        return 0
    progress = zarr.open_group(store, mode="r")["progress"]
    return int(np.count_nonzero(progress[:]))  # type: ignore[index,arg-type]


def all_arrays(out: Path) -> dict[str, np.ndarray]:
    """Every array in the store by path, for exact comparisons."""
    root = zarr.open_group(out / "store.zarr", mode="r")
    arrays: dict[str, np.ndarray] = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, array in group.arrays():
            arrays[prefix + name] = np.asarray(array[:])
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(root, "")
    return arrays


def assert_stores_match(reference: Path, other: Path, rtol: float = 1e-5) -> None:
    """Same tokens exactly, same metrics up to float rounding (reduction order may differ)."""
    one, two = open_store(reference), open_store(other)
    assert two.complete and two.n_tokens == one.n_tokens
    np.testing.assert_array_equal(two.token_ids(), one.token_ids())
    np.testing.assert_array_equal(two.positions(), one.positions())
    for point in one.points:
        for metric in one.metrics:
            np.testing.assert_allclose(
                two.metric(point, metric),
                one.metric(point, metric),
                rtol=rtol,
                atol=1e-6,
                err_msg=f"{point}/{metric}",
            )
    assert (other / "tokenizer" / "tokenizer.json").exists()

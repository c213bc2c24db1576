"""Issue 18: every damaged file of a finished store, uncompacted or compacted, is either repaired
by the command the message names or refused in one line (exit 2) by check, fit, plot and report;
never silently read, never a traceback.

One store per layout is collected (and fitted) once per module; each case damages a copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.cli_helpers import all_arrays
from zipfstage.cli import app
from zipfstage.store.writer import update_attributes

runner = CliRunner()
COLLECT = [
    *("--data", "pydoc", "--max-tokens", "2048", "--seq-len", "32", "--batch-size", "4"),
    *("--points", "embed,middle", "--metrics", "rms", "--channels", "4", "--topk", "0", "-q"),
]
FAST_FIT = ["--bootstrap", "0", "--max-samples", "500", "--workers", "1"]
METRIC = "metrics/embed/rms"
#: what each case damages inside the store: an array's data file (its one chunk, holding every
#: batch here, or its one shard when compacted), or a metadata document
TARGETS = {
    "metric chunk": METRIC,
    "token ids": "tokens/ids",
    "progress": "progress",
    "batch_digest": "batch_digest",
    "batch_checksum": "batch_checksum",
    "array zarr.json": f"{METRIC}/zarr.json",
    "root zarr.json": "zarr.json",
}
FILE_DAMAGE = ("delete", "truncate", "zero-fill", "flip")
METADATA_DAMAGE = ("garbage", "truncate")
CASES = [
    (target, how)
    for target in TARGETS
    for how in (METADATA_DAMAGE if target.endswith("zarr.json") else FILE_DAMAGE)
]
OVERWRITE = "--overwrite"
REPAIRS = "run `zipfstage collect` with the same settings"


def invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def collect(model: Path, out: Path, *extra: str) -> Any:
    return invoke("collect", "--model", model, "--out", out, *COLLECT, *extra)


def data_arrays(out: Path) -> dict[str, np.ndarray]:
    return {k: v for k, v in all_arrays(out).items() if not k.startswith(("fits/", "outliers"))}


def assert_same(after: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    assert after.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(after[name], reference[name], err_msg=name)


@pytest.fixture(scope="module")
def stores(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished, fitted store per layout (its files as collect and compact wrote them)."""
    base = tmp_path_factory.mktemp("damage")
    plain, compacted = base / "uncompacted", base / "compacted"
    assert collect(tiny_llama, plain, "--no-compact").exit_code == 0
    assert invoke("fit", "--out", plain, *FAST_FIT).exit_code == 0
    shutil.copytree(plain, compacted)
    assert invoke("compact", "--out", compacted).exit_code == 0
    return {"uncompacted": plain, "compacted": compacted}


def target_file(store: Path, target: str) -> Path:
    """The file a case damages: a metadata document, or the one data file of an array."""
    path = store / TARGETS[target]
    if path.is_file():
        return path
    (data,) = [p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json"]
    return data


def damage(path: Path, how: str) -> None:
    """Damage one file the way a disk, a copy or a person might."""
    size = path.stat().st_size
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        os.truncate(path, size // 2)
    elif how == "zero-fill":
        path.write_bytes(bytes(size))
    elif how == "flip":  # 8 bytes inside the first batch's rows (or the shard's first chunk)
        data = bytearray(path.read_bytes())
        offset = min(16, size - 8)
        data[offset : offset + 8] = bytes(b ^ 0x5A for b in data[offset : offset + 8])
        path.write_bytes(bytes(data))
    elif how == "garbage":
        path.write_text("{garbage")


def assert_refused(result: Any, stage: str) -> str:
    """Exit 2 with no traceback; fit, plot and report say it in one line. The last line."""
    assert result.exit_code == 2, (stage, result.output)
    assert "Traceback" not in result.output, (stage, result.output)
    lines = result.output.strip().splitlines()
    if stage != "check":  # check lists each damaged array before its verdict
        assert len(lines) == 1, (stage, result.output)
    return " ".join(lines)


@pytest.mark.parametrize("layout", ["uncompacted", "compacted"])
@pytest.mark.parametrize(("target", "how"), CASES)
def test_damage_is_refused_in_one_line_and_the_named_command_repairs_it(
    stores: dict[str, Path],
    tiny_llama: Path,
    tmp_path: Path,
    layout: str,
    target: str,
    how: str,
) -> None:
    out = tmp_path / "run"
    shutil.copytree(stores[layout], out)
    reference = data_arrays(stores[layout])
    damage(target_file(out / "store.zarr", target), how)
    messages = {
        "check": assert_refused(invoke("check", "--out", out), "check"),
        "fit": assert_refused(invoke("fit", "--out", out, "--force", *FAST_FIT), "fit"),
        "plot": assert_refused(invoke("plot", "--out", out), "plot"),
        "report": assert_refused(invoke("report", "--out", out), "report"),
    }
    repairable = layout == "uncompacted" and not target.endswith("zarr.json")
    for stage, message in messages.items():
        assert (REPAIRS in message) == repairable, (stage, message)
        assert (OVERWRITE in message) != repairable, (stage, message)
    if repairable:
        result = collect(tiny_llama, out, "--no-compact")
        assert result.exit_code == 0, result.output
        assert "collecting" in result.output and "batches again" in result.output
        assert_same(data_arrays(out), reference)
    check = invoke("check", "--out", out)
    assert (check.exit_code == 0) == repairable, check.output


@pytest.mark.parametrize("layout", ["uncompacted", "compacted"])
def test_overwrite_repairs_what_collect_cannot_patch(
    stores: dict[str, Path], tiny_llama: Path, tmp_path: Path, layout: str
) -> None:
    """What the refusals name for a compacted store or damaged metadata: --overwrite."""
    out = tmp_path / "run"
    shutil.copytree(stores[layout], out)
    damage(target_file(out / "store.zarr", "array zarr.json"), "garbage")
    refused = collect(tiny_llama, out, "--no-compact")
    assert OVERWRITE in assert_refused(refused, "collect")
    assert collect(tiny_llama, out, "--no-compact", OVERWRITE).exit_code == 0
    assert invoke("check", "--out", out).exit_code == 0
    assert_same(data_arrays(out), data_arrays(stores["uncompacted"]))


def test_a_zeroed_progress_entry_is_pending_while_collecting_and_damage_once_finished(
    stores: dict[str, Path], tiny_llama: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(stores["uncompacted"], out)
    progress = zarr.open_array(out / "store.zarr" / "progress", mode="r+")
    progress[3] = 0
    line = assert_refused(invoke("fit", "--out", out, *FAST_FIT), "fit")
    assert "batch 3 of a finished store claims 0 rows" in line and REPAIRS in line
    # the same entry in a store collect has not finished is a batch not committed yet
    update_attributes(out / "store.zarr", {"status": "running"})
    assert invoke("check", "--out", out).exit_code == 0
    result = collect(tiny_llama, out, "--no-compact")
    assert result.exit_code == 0 and "batches again" not in result.output, result.output
    assert_same(data_arrays(out), data_arrays(stores["uncompacted"]))

"""Issue 12: a store is never mixed up with another generation, another text, or lost chunks;
every failure is one line, exit 2, with the data left as it was."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tests.cli_helpers import all_arrays
from tests.synthetic_store import make_synthetic_store
from tests.test_collect import collect
from zipfstage.cli import app
from zipfstage.collect.corpus import DataSpec, iter_batches, iter_documents, pack_sequences
from zipfstage.collect.spec import describe_changes
from zipfstage.store import open_store
from zipfstage.store.layout import ROOT_ATTR
from zipfstage.store.lock import reading_lock, replacing_lock
from zipfstage.store.writer import StoreWriter, update_attributes

runner = CliRunner()
NO_COMPACT = "--no-compact"


def one_line_error(result: Any) -> str:
    """The result failed with exit 2 and printed exactly one line; that line."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return str(lines[0])


def invoke(*args: str) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def data_arrays(out: Path) -> dict[str, np.ndarray]:
    """Every array but fits/ (which fit may add): what must stay as it was."""
    return {k: v for k, v in all_arrays(out).items() if not k.startswith("fits/")}


def assert_same_arrays(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def write_corpus(path: Path, tail: str = "") -> Path:
    """A text file of pydoc topics, 300 characters a line; `tail` replaces all but two lines."""
    from pydoc_data import topics

    lines = [" ".join(topics.topics[key].split())[:300] for key in sorted(topics.topics)[:40]]
    if tail:
        lines = lines[:2] + [tail] * 38
    path.write_text("\n".join(lines) + "\n")
    return path


# -- 1. a store generation ----------------------------------------------------------------------


def test_collect_overwrite_refuses_while_a_reader_holds_the_store(
    tiny_llama: Path, tmp_path: Path
) -> None:
    assert collect(tiny_llama, tmp_path, NO_COMPACT).exit_code == 0
    before = data_arrays(tmp_path)
    with reading_lock(tmp_path):  # what a running fit, plot or report holds
        line = one_line_error(collect(tiny_llama, tmp_path, "--overwrite", "--seed", "7"))
    assert "being read by zipfstage fit" in line
    assert_same_arrays(before, data_arrays(tmp_path))
    # once the reader is done, the replacement goes ahead and is a new generation
    old_id = open_store(tmp_path).attributes.store_id
    assert collect(tiny_llama, tmp_path, "--overwrite", "--seed", "7").exit_code == 0
    assert open_store(tmp_path).attributes.store_id not in (None, old_id)


def test_fit_never_writes_into_a_store_that_replaced_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock aside (one process here), the generation check at write time keeps the old fit
    out of the new store; plot and report then refuse, and a new fit makes it current."""
    run = tmp_path / "run"
    make_synthetic_store(run, n_batches=2, seq_len=64, metrics=("rms",))
    make_synthetic_store(tmp_path / "other", n_batches=2, seq_len=64, metrics=("rms",), seed=7)
    import zipfstage.fitting.stage as stage

    real_schedule = stage.schedule

    def replace_store_meanwhile(*args: Any, **kwargs: Any) -> Any:
        fitted = list(real_schedule(*args, **kwargs))  # fitted from the old store
        shutil.rmtree(run / "store.zarr")  # what `collect --overwrite --seed 7` does
        shutil.copytree(tmp_path / "other" / "store.zarr", run / "store.zarr")
        yield from fitted

    monkeypatch.setattr(stage, "schedule", replace_store_meanwhile)
    line = one_line_error(invoke("fit", "--out", run, "--workers", "1"))
    assert "was replaced while fitting" in line
    root = zarr.open_group(run / "store.zarr", mode="r")
    assert "fits" not in root  # nothing of the old fit landed in the new store
    monkeypatch.undo()

    # a fit record of another generation (the old bug) is read as stale, never as current
    make_synthetic_store(tmp_path / "old", n_batches=2, seq_len=64, metrics=("rms",))
    assert invoke("fit", "--out", tmp_path / "old", "--workers", "1").exit_code == 0
    shutil.copytree(tmp_path / "old" / "store.zarr" / "fits", run / "store.zarr" / "fits")
    for command in ("plot", "report"):
        line = one_line_error(invoke(command, "--out", run))
        assert "fits are from another collection: run `zipfstage fit" in line
    # fit treats them as missing: it refits, and the records carry this generation
    result = invoke("fit", "--out", run, "--workers", "1")
    assert result.exit_code == 0 and "fitted 3 (point, metric) pairs" in result.output
    from zipfstage.store.fits import read_fit_records

    current = open_store(run).attributes.store_id
    assert {r["store_id"] for p in read_fit_records(run).values() for r in p.values()} == {current}
    assert invoke("report", "--out", run).exit_code == 0


def test_readers_refuse_while_the_store_is_being_replaced(tmp_path: Path) -> None:
    make_synthetic_store(tmp_path, n_batches=1, seq_len=64, metrics=("rms",))
    with replacing_lock(tmp_path):  # what collect holds while it creates or replaces the store
        for command in ("fit", "plot", "report"):
            line = one_line_error(invoke(command, "--out", tmp_path))
            assert "collect is replacing or compacting the store" in line
    assert "fits" not in zarr.open_group(tmp_path / "store.zarr", mode="r")


def test_collect_leaves_compaction_while_a_reader_reads(tiny_llama: Path, tmp_path: Path) -> None:
    """fit beside a collect of the same store is fine; compaction would swap arrays under it."""
    assert collect(tiny_llama, tmp_path, "--metrics", "rms", NO_COMPACT).exit_code == 0
    committed_after(tmp_path, 3)  # a collect resumed while a fit reads the same store
    with reading_lock(tmp_path):
        result = collect(tiny_llama, tmp_path, "--metrics", "rms")
    assert result.exit_code == 0, result.output
    assert "not compacted while it is being read" in result.output
    assert open_store(tmp_path).attributes.layout is None
    assert invoke("compact", "--out", tmp_path).exit_code == 0
    assert open_store(tmp_path).attributes.layout == "sharded"


# -- 2. a digest per batch ----------------------------------------------------------------------


def committed_after(out: Path, batches: int) -> None:
    """Make the store look like a collect killed after `batches` batches."""
    root = zarr.open_group(out / "store.zarr", mode="r+")
    progress = root["progress"]
    progress[batches:] = 0  # type: ignore[index]
    update_attributes(out / "store.zarr", {"status": "running"})


def first_differing_batch(tokenizer_dir: Path, one: Path, two: Path) -> int:
    def batches(path: Path) -> list[np.ndarray]:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        docs = iter_documents(DataSpec(str(path)))
        return list(iter_batches(pack_sequences(docs, tokenizer, 32, True), 4, 20))

    pairs = zip(batches(one), batches(two), strict=False)
    return next(i for i, (a, b) in enumerate(pairs) if not np.array_equal(a, b))


@pytest.mark.parametrize("old_store", [False, True], ids=["digest", "no-digest-array"])
def test_resume_refuses_a_changed_text_naming_the_first_changed_batch(
    tiny_llama: Path, tmp_path: Path, old_store: bool
) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "run"
    assert collect(tiny_llama, out, NO_COMPACT, data=corpus).exit_code == 0
    committed_after(out, 3)
    if old_store:  # a store written before digests (and checksums): the token ids are compared
        shutil.rmtree(out / "store.zarr" / "batch_digest")
        shutil.rmtree(out / "store.zarr" / "batch_checksum")
    original = tmp_path / "original.txt"
    shutil.copy(corpus, original)
    write_corpus(corpus, tail="A different text entirely, with other words in it. " * 8)
    changed = first_differing_batch(tiny_llama, original, corpus)
    assert 0 < changed < 3  # batch 0, the old fingerprint, is the same: only digests see this
    before = data_arrays(out)
    line = one_line_error(collect(tiny_llama, out, NO_COMPACT, data=corpus))
    assert f"batch {changed} of the data differs" in line
    assert_same_arrays(before, data_arrays(out))
    shutil.copy(original, corpus)  # the right text resumes
    assert collect(tiny_llama, out, NO_COMPACT, data=corpus).exit_code == 0
    assert open_store(out).complete


# -- 3. lost and damaged chunks ------------------------------------------------------------------


def chunk_of_batch(out: Path, name: str, batch: int) -> tuple[Path, int, int]:
    """The chunk file holding `batch` of array `name` while collecting (chunks of many batches),
    the first batch it holds, and how many batches it holds."""
    array = zarr.open_array(out / "store.zarr" / name, mode="r")
    info = zarr.open_group(out / "store.zarr", mode="r").attrs[ROOT_ATTR]
    batch_rows = info["plan"]["batch_size"] * info["plan"]["seq_len"]
    per_chunk = array.chunks[0] // batch_rows
    first = batch // per_chunk * per_chunk
    held = min(per_chunk, info["n_batches"] - first)
    return out / "store.zarr" / name / f"c.{batch // per_chunk}", first, held


def test_a_deleted_chunk_is_refused_by_fit_found_by_check_and_collected_again(
    tiny_llama: Path, tmp_path: Path
) -> None:
    assert collect(tiny_llama, tmp_path, NO_COMPACT, "--metrics", "rms,max_abs").exit_code == 0
    reference = data_arrays(tmp_path)
    chunk, first, held = chunk_of_batch(tmp_path, "metrics/embed/rms", 3)
    chunk.unlink()
    line = one_line_error(invoke("fit", "--out", tmp_path))
    assert f"metrics/embed/rms: the chunk of batch {first} is missing" in line
    check = invoke("check", "--out", tmp_path)
    # 3 points x (2 metrics + 3 top-k) + ids, positions, batch_digest and batch_checksum
    assert check.exit_code == 2 and "1 of 19 arrays are damaged" in check.output, check.output
    assert f"metrics/embed/rms: the chunk of batch {first} is missing" in check.output
    result = collect(tiny_llama, tmp_path, NO_COMPACT, "--metrics", "rms,max_abs")
    assert result.exit_code == 0 and f"collecting {held} batches again" in result.output
    assert "already complete" not in result.output
    assert_same_arrays(reference, data_arrays(tmp_path))
    assert open_store(tmp_path).complete
    check = invoke("check", "--out", tmp_path)
    assert check.exit_code == 0 and "are whole" in check.output


def test_a_token_chunk_lost_and_made_again_by_a_later_batch_is_found_by_check(
    tiny_llama: Path, tmp_path: Path
) -> None:
    """Metric chunks are made sparse (zeros), but token ids' are filled with -1: a chunk deleted
    while collect runs and made again by its next batch reads -1 for the committed batches it
    lost, and `check` names the first of them."""
    assert collect(tiny_llama, tmp_path, NO_COMPACT, "--metrics", "rms").exit_code == 0
    store = tmp_path / "store.zarr"
    ids = np.asarray(zarr.open_array(store / "tokens/ids", mode="r")[:])
    zarr.open_array(store / "progress", mode="r+")[3:] = 0  # batches 3.. still to come
    chunk, first, _ = chunk_of_batch(tmp_path, "tokens/ids", 0)
    chunk.unlink()
    assert first == 0
    writer = StoreWriter(store)
    rows = writer.plan.batch_rows(3)
    writer.write_batch(3, ids[rows], np.zeros(rows.stop - rows.start, np.int32), {})
    assert chunk.exists()
    check = invoke("check", "--out", tmp_path)
    assert check.exit_code == 2 and "tokens/ids: the chunk of batch 0 is missing" in check.output


def test_a_truncated_chunk_or_metadata_is_one_line_for_every_reader(
    tiny_llama: Path, tmp_path: Path
) -> None:
    assert collect(tiny_llama, tmp_path, NO_COMPACT, "--metrics", "rms").exit_code == 0
    assert invoke("fit", "--out", tmp_path, "--workers", "1").exit_code == 0
    chunk, first, _ = chunk_of_batch(tmp_path, "metrics/layer_2/rms", 2)
    chunk.write_bytes(chunk.read_bytes()[:7])
    damage = f"metrics/layer_2/rms: the chunk of batch {first}"
    for command in ("fit", "plot", "report"):
        line = one_line_error(
            invoke(command, "--out", tmp_path, *(["--force"] * (command == "fit")))
        )
        assert f"{damage} is unreadable" in line, command
    check = invoke("check", "--out", tmp_path)
    assert check.exit_code == 2 and damage in check.output
    assert chunk.stat().st_size == 7  # nothing rewrote it
    meta = tmp_path / "store.zarr" / "metrics" / "embed" / "rms" / "zarr.json"
    meta.write_text(meta.read_text()[:20])
    for command in ("fit", "plot", "report"):
        line = one_line_error(
            invoke(command, "--out", tmp_path, *(["--force"] * (command == "fit")))
        )
        assert "metrics/" in line and ("zarr.json" in line or "unreadable" in line), line


def test_a_compacted_store_with_a_lost_shard_is_detected(tiny_llama: Path, tmp_path: Path) -> None:
    assert collect(tiny_llama, tmp_path, "--metrics", "rms").exit_code == 0  # compacted
    shard_dir = tmp_path / "store.zarr" / "metrics" / "embed" / "rms" / "c"
    shard = sorted(p for p in shard_dir.rglob("*") if p.is_file())[0]
    shard.unlink()
    line = one_line_error(invoke("fit", "--out", tmp_path))
    assert "metrics/embed/rms: the chunk of batch 0 is missing" in line
    assert one_line_error(collect(tiny_llama, tmp_path, "--metrics", "rms")).count("compacted")
    check = invoke("check", "--out", tmp_path)
    assert check.exit_code == 2 and "metrics/embed/rms" in check.output


# -- every error one line, exit 2, nothing lost --------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES], ids=["full-disk", "unwritable"])
def test_collect_write_failure_is_one_line_and_keeps_committed_batches(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A full disk, or a chunk folder that cannot be written (chmod does not stop root, so the
    writer's OSError is simulated), fails batch 2: batches 0 and 1 stay committed and whole."""
    reference = tmp_path / "reference"
    assert collect(tiny_llama, reference, NO_COMPACT).exit_code == 0
    from zipfstage.store.chunk_write import ChunkFile

    real = ChunkFile.write

    def failing(self: ChunkFile, start: int, data: np.ndarray) -> bool:
        if self.folder.name == "rms" and start == 256:  # batch 2's rows (128 per batch)
            raise OSError(code, os.strerror(code), "store.zarr/metrics/embed/rms/c.0")
        return real(self, start, data)

    monkeypatch.setattr(ChunkFile, "write", failing)
    out = tmp_path / "run"
    line = one_line_error(collect(tiny_llama, out, NO_COMPACT))
    assert "cannot write batch 2" in line and os.strerror(code) in line
    monkeypatch.undo()
    partial = open_store(out)
    assert partial.committed_counts.tolist()[:2] == [128, 128] and partial.n_tokens == 256
    np.testing.assert_array_equal(partial.token_ids(), open_store(reference).token_ids()[:256])
    assert collect(tiny_llama, out, NO_COMPACT).exit_code == 0
    assert_same_arrays(data_arrays(reference), data_arrays(out))


def test_fit_write_failure_is_one_line_and_leaves_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_synthetic_store(tmp_path, n_batches=2, seq_len=64, metrics=("rms",))
    before = data_arrays(tmp_path)
    import zipfstage.store.fits as fits

    def full(*args: Any) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fits, "_write_curves", full)
    line = one_line_error(invoke("fit", "--out", tmp_path, "--workers", "1"))
    assert "cannot write the fit of" in line and "No space left" in line
    assert_same_arrays(before, data_arrays(tmp_path))


def test_out_that_cannot_be_made_is_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    """/proc as root: os.access says yes, mkdir fails later."""
    line = one_line_error(collect(tiny_llama, Path("/proc/zipfstage-x")))
    assert "/proc/zipfstage-x" in line
    assert not Path("/proc/zipfstage-x").exists()


def test_a_lock_file_that_is_a_directory_is_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    (tmp_path / ".zipfstage.lock").mkdir()
    line = one_line_error(collect(tiny_llama, tmp_path))
    assert ".zipfstage.lock is a directory" in line
    assert not (tmp_path / "store.zarr").exists()
    make_synthetic_store(tmp_path / "fitted", n_batches=1, seq_len=64, metrics=("rms",))
    (tmp_path / "fitted" / ".zipfstage.readers").mkdir()
    line = one_line_error(invoke("fit", "--out", tmp_path / "fitted"))
    assert ".zipfstage.readers is a directory" in line


def test_overwrite_removes_symlinks_never_their_targets(tiny_llama: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    assert collect(tiny_llama, real, NO_COMPACT).exit_code == 0
    before = data_arrays(real)
    run = tmp_path / "run"
    run.mkdir()
    (run / "store.zarr").symlink_to(real / "store.zarr")
    (run / "tokenizer").symlink_to(real / "tokenizer")
    result = collect(tiny_llama, run, "--overwrite", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert not (run / "store.zarr").is_symlink() and (run / "store.zarr").is_dir()
    assert_same_arrays(before, data_arrays(real))
    assert (real / "tokenizer" / "tokenizer.json").exists()


def test_gpt2_seq_len_above_its_positions_is_refused_before_writing(
    tiny_gpt2: Path, tmp_path: Path
) -> None:
    args = ["collect", "--model", tiny_gpt2, "--data", "pydoc", "--out", tmp_path]
    line = one_line_error(invoke(*args, "--seq-len", "600", "--max-tokens", "1200", "-q"))
    assert "--seq-len 600" in line and "512 positions" in line
    assert not (tmp_path / "store.zarr").exists()


def test_changed_settings_name_only_what_changed() -> None:
    old = {"collect": {"seed": 0, "seq_len": 32}, "model": {"name": "a"}, "dtype": "float32"}
    new = {"collect": {"seed": 7, "seq_len": 32}, "model": {"name": "a"}, "dtype": "float32"}
    assert describe_changes(old, new) == "collect.seed 0 -> 7"
    assert describe_changes(old, old) == "unknown difference"


def test_fit_errors_print_no_progress_line(tmp_path: Path) -> None:
    line = one_line_error(invoke("fit", "--out", tmp_path))
    assert line.startswith("error: no store")
    make_synthetic_store(tmp_path, n_batches=1, seq_len=64, metrics=("rms",))
    line = one_line_error(invoke("fit", "--out", tmp_path, "--points", "nope"))
    assert line.startswith("error: point 'nope'")


def test_too_many_channels_are_clamped_with_one_note(tiny_llama: Path, tmp_path: Path) -> None:
    result = collect(tiny_llama, tmp_path, "--channels", "100000", "--metrics", "channel_wise")
    assert result.exit_code == 0, result.output
    assert result.output.count("--channels 100000 is more than the model has") == 1
    width = len(open_store(tmp_path).channel_indices)
    assert f"keeps all {width} channels" in result.output

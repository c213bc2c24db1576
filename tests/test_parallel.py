"""Several worker processes on one store: same arrays as one process, resume with any worker count,
a dead worker stops the run cleanly. All on CPU (`--devices cpu,cpu`) with a tiny random model."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from typer.testing import CliRunner

from tests.cli_helpers import (
    all_arrays,
    assert_stores_match,
    committed_batches,
    small_collect_args,
    spawn_collect,
)
from zipfstage.cli import app
from zipfstage.collect.coordinator import share_of
from zipfstage.store import open_store

runner = CliRunner()
# 125 batches of few arrays: long enough to kill mid-run, quick to write on a 2-core machine
LONG = small_collect_args(16000, "embed,last.mlp_act", "rms,channel_wise")  # d_ff channels
# every metric at three points, one chunk per batch each
SHORT = small_collect_args(1280, "embed,layer_1.attn_out,last")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Workers get cores // workers threads: 1 here, so the in-process reference uses 1 too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def long_reference(
    tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """An uninterrupted single-process run with 1 thread (what every worker here uses)."""
    out = tmp_path_factory.mktemp("reference")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = runner.invoke(
            app, ["collect", "--model", str(tiny_llama), "--out", str(out), *LONG]
        )
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    return all_arrays(out)


def spawn_cli(model: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return spawn_collect(model, out, *LONG, *extra)


def wait_for_batches(process: subprocess.Popen[bytes], out: Path, count: int) -> None:
    deadline = time.monotonic() + 240
    while committed_batches(out) < count:
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "collect made no progress"
        time.sleep(0.05)


def workers_of(pid: int) -> list[psutil.Process]:
    """The spawned collect workers (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def assert_same_as(reference: dict[str, np.ndarray], out: Path) -> None:
    actual = all_arrays(out)
    assert actual.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(actual[name], reference[name], err_msg=name)
    assert open_store(out).complete


def test_share_is_round_robin_over_pending_batches() -> None:
    pending = [0, 3, 4, 5, 9, 10, 11]
    shares = [share_of(pending, i, 3) for i in range(3)]
    assert shares == [[0, 5, 11], [3, 9], [4, 10]]
    assert sorted(b for share in shares for b in share) == pending


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "0,1", "--devices", "cpu"], "not both"),
        (["--gpus", "0,x"], "GPU indices"),
        (["--gpus", "0,1"], "no CUDA GPU is visible"),
        (["--devices", "cpu,tpu:0"], "unknown device"),
        (["--devices", "cpu,cpu", "--points", "layer_99"], "out of range"),
    ],
)
def test_bad_device_options_exit_2_without_store(
    args: list[str], message: str, tiny_llama: Path, tmp_path: Path
) -> None:
    if "--gpus" in args and "x" not in args[1] and torch.cuda.device_count() >= 2:
        pytest.skip("GPUs are visible here")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--out", str(out), *SHORT, *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_two_cpu_workers_match_one_process(tiny_llama: Path, tmp_path: Path) -> None:
    single = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--out", str(tmp_path / "one"), *SHORT]
    )
    assert single.exit_code == 0, single.output
    double = runner.invoke(
        app,
        [
            "collect",
            "--model",
            str(tiny_llama),
            "--out",
            str(tmp_path / "two"),
            *SHORT,
            "--devices",
            "cpu,cpu",
        ],
    )
    assert double.exit_code == 0, double.output
    # the parent may use more threads than each worker: equal up to reduction order
    assert_stores_match(tmp_path / "one", tmp_path / "two")
    one, two = open_store(tmp_path / "one"), open_store(tmp_path / "two")
    assert two.n_tokens == 1280 and two.info["config_hash"] == one.info["config_hash"]


def test_shard_model_on_cpu_matches(tiny_llama: Path, tmp_path: Path, one_thread: None) -> None:
    plain = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--out", str(tmp_path / "plain"), *SHORT]
    )
    sharded = runner.invoke(
        app,
        [
            "collect",
            "--model",
            str(tiny_llama),
            "--out",
            str(tmp_path / "sharded"),
            *SHORT,
            "--shard-model",
            "--devices",
            "cpu",
        ],
    )
    assert plain.exit_code == 0 and sharded.exit_code == 0, sharded.output
    assert_same_as(all_arrays(tmp_path / "plain"), tmp_path / "sharded")


def start_two_workers(
    model: Path, out: Path
) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """A 2-worker collect in the background, once 10 batches are committed, with its workers
    suspended (SIGSTOP): the rest of the run takes well under a second on the tiny model, so
    a kill sent a little late could find the run already complete. Resume them after the
    kill (`resume`)."""
    process = spawn_cli(model, out, "--devices", "cpu,cpu")
    wait_for_batches(process, out, 10)
    workers = workers_of(process.pid)
    for worker in workers:
        worker.suspend()
    assert len(workers) == 2 and process.poll() is None, "the run ended before the kill"
    return process, workers


def resume(workers: list[psutil.Process]) -> None:
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.resume()


def test_killed_two_worker_run_resumes_on_one(
    tiny_llama: Path, tmp_path: Path, long_reference: dict[str, np.ndarray], one_thread: None
) -> None:
    out = tmp_path / "run"
    process, workers = start_two_workers(tiny_llama, out)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    resume(workers)
    # the workers notice their parent is gone and stop writing at once
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, "workers outlived their parent"
    partial = open_store(out)
    assert not partial.complete and 0 < partial.n_tokens < 16000

    resumed = runner.invoke(app, ["collect", "--model", str(tiny_llama), "--out", str(out), *LONG])
    assert resumed.exit_code == 0, resumed.output
    assert_same_as(long_reference, out)


def test_dead_worker_stops_run_and_store_resumes_on_three(
    tiny_llama: Path, tmp_path: Path, long_reference: dict[str, np.ndarray], one_thread: None
) -> None:
    out = tmp_path / "run"
    process, workers = start_two_workers(tiny_llama, out)
    workers[1].send_signal(signal.SIGKILL)
    resume(workers[:1])
    assert process.wait(timeout=60) == 1
    stderr = process.stderr.read().decode()  # type: ignore[union-attr]
    assert "died (exit -9)" in stderr and "re-run the same command to resume" in stderr, stderr
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, "the other worker was left running"
    assert not open_store(out).complete

    resumed = runner.invoke(
        app,
        [
            "collect",
            "--model",
            str(tiny_llama),
            "--out",
            str(out),
            *LONG,
            "--devices",
            "cpu,cpu,cpu",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    assert_same_as(long_reference, out)

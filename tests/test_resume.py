"""A collect killed with SIGKILL and run again ends with the arrays of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.cli_helpers import all_arrays, committed_batches, small_collect_args, spawn_collect
from zipfstage.store import open_store

ARGS = small_collect_args(16000, "embed,layer_1.mlp_act,last")  # a d_ff site among them


def run_cli(model: Path, out: Path) -> subprocess.Popen[bytes]:
    return spawn_collect(model, out, *ARGS)


def test_sigkill_then_resume_gives_identical_arrays(tiny_llama: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    done = run_cli(tiny_llama, reference)
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()  # type: ignore[union-attr]

    interrupted = tmp_path / "interrupted"
    kills = 0
    for threshold in (10, 60):
        process = run_cli(tiny_llama, interrupted)
        deadline = time.monotonic() + 240
        while committed_batches(interrupted) < threshold and process.poll() is None:
            assert time.monotonic() < deadline, "collect made no progress"
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
    assert kills >= 1, "the run finished before it could be killed; make it longer"
    partial = open_store(interrupted)
    assert not partial.complete and 0 < partial.n_tokens < 16000

    finished = run_cli(tiny_llama, interrupted)
    assert finished.wait(timeout=300) == 0, finished.stderr.read().decode()  # type: ignore[union-attr]
    expected, actual = all_arrays(reference), all_arrays(interrupted)
    assert expected.keys() == actual.keys()
    # the integer top-k arrays are compared exactly too
    assert actual["metrics/layer_3/topk_channel"].dtype == np.int32
    assert actual["metrics/layer_3/topk_sign"].dtype == np.int8
    assert (actual["metrics/layer_3/topk_channel"] >= 0).all()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert open_store(interrupted).complete


def test_ctrl_c_stops_at_a_batch_boundary_and_resumes(tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = run_cli(tiny_llama, out)
    deadline = time.monotonic() + 240
    while committed_batches(out) < 5 and process.poll() is None:
        assert time.monotonic() < deadline, "collect made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    # 500 batches and a signal after 5: the run cannot have finished first
    assert process.returncode == 130, stderr.decode()
    assert "stopped at a batch boundary" in stderr.decode()
    stopped = open_store(out)
    counts = stopped.root["progress"][:]
    # every committed batch is whole, and nothing past the committed rows was half written
    assert set(np.unique(counts[counts > 0]).tolist()) == {4 * 32}
    assert not stopped.complete
    resumed = run_cli(tiny_llama, out)
    assert resumed.wait(timeout=300) == 0
    assert open_store(out).complete and open_store(out).n_tokens == 16000 // 32 * 32

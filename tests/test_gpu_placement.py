"""Which GPU each worker and rank uses, checked without a GPU: torch.cuda's answers are faked.

A fake machine (`fake_gpus`) answers `is_available`, `device_count` and the compute capability of
each GPU, and records `set_device`; loading a model is replaced by a function that records the
placement and stops the worker there.
"""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.test_parallel import SHORT
from zipfstage.cli import app
from zipfstage.collect import distributed, parallel
from zipfstage.collect.messages import Failed
from zipfstage.collect.models import pick_device, pick_dtype
from zipfstage.collect.placement import Placement, Ranks, place
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError

runner = CliRunner()


class FakeGpus:
    """`count` visible GPUs; GPU i has compute capability `majors[i]`; set_device recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int, majors: list[int]) -> None:
        self.current: list[int] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: self.current.append(_index(d)))
        monkeypatch.setattr(
            torch.cuda, "get_device_capability", lambda d=None: (majors[_index(d)], 0)
        )
        # what the old code asked: GPU 0's answer, whichever GPU the worker has
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: majors[0] >= 8)


def _index(device: object) -> int:
    return torch.device(device).index or 0 if device is not None else 0  # type: ignore[arg-type]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Placement]:
    """Every prepare_run's placement; the load itself stops the worker with a user error."""
    seen: list[Placement] = []

    def prepare_run(settings: CollectSettings, out_dir: Path, placement: Placement) -> None:
        seen.append(placement)
        raise ZipfstageError("stop here: no model in this test")

    monkeypatch.setattr(parallel, "prepare_run", prepare_run)
    monkeypatch.setattr(distributed, "prepare_run", prepare_run)
    return seen


@pytest.mark.parametrize(("count", "local_rank", "expected"), [(8, 11, 3), (1, 5, 0), (2, 1, 1)])
@pytest.mark.parametrize("device", [None, "cuda"])
def test_torchrun_ranks_share_out_the_visible_gpus(
    monkeypatch: pytest.MonkeyPatch, device: str | None, count: int, local_rank: int, expected: int
) -> None:
    """One rank per GPU; a launcher that shows each rank one GPU gives every rank cuda:0."""
    FakeGpus(monkeypatch, count, [9] * count)
    settings = CollectSettings(device=device)
    assert place(settings, local_rank, torchrun=True) == Placement(f"cuda:{expected}")
    assert place(CollectSettings(device="cuda:1"), 0, torchrun=True) == Placement("cuda:1")


def test_a_gpu_index_beyond_the_visible_ones_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeGpus(monkeypatch, 1, [9])
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ZipfstageError, match=r"cuda:1 asked for, but this process sees 1 CUDA GPU"):
        pick_device("cuda:1")


def test_gpus_beyond_the_machine_stop_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch, loads: list[Placement], tiny_llama: Path, tmp_path: Path
) -> None:
    FakeGpus(monkeypatch, 1, [9])

    def no_workers(*args: object) -> None:
        raise AssertionError("a worker was started")

    monkeypatch.setattr(parallel, "WorkerPool", no_workers)
    out = tmp_path / "out"
    args = ["collect", "--model", str(tiny_llama), "--out", str(out), *SHORT, "--gpus", "0,1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "cuda:1 asked for, but this process sees 1 CUDA GPU (cuda:0)" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and loads == []


def test_every_worker_sets_its_gpu_before_loading(
    monkeypatch: pytest.MonkeyPatch, loads: list[Placement], tmp_path: Path
) -> None:
    gpus = FakeGpus(monkeypatch, 2, [9, 9])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    launch = parallel.WorkerLaunch(
        CollectSettings(devices=["cuda:0", "cuda:1"]), tmp_path, 1, False
    )
    inbox: queue.Queue[object] = queue.Queue()
    for index in (1, 0):
        with pytest.raises(SystemExit):
            parallel.worker_main(index, launch, inbox, queue.Queue(), None)
        assert isinstance(inbox.get_nowait(), Failed)
    assert gpus.current == [1, 0]
    assert loads == [Placement("cuda:1"), Placement("cuda:0")]


def test_every_rank_sets_its_gpu_before_loading(
    monkeypatch: pytest.MonkeyPatch, loads: list[Placement], tmp_path: Path
) -> None:
    gpus = FakeGpus(monkeypatch, 4, [9] * 4)
    monkeypatch.setattr(distributed, "_gather", lambda status: [status])
    with pytest.raises(ZipfstageError, match="stop here"):
        distributed._prepare_everywhere(CollectSettings(), tmp_path, Ranks(6, 8, 6))
    assert gpus.current == [2] and loads == [Placement("cuda:2")]


def test_auto_dtype_asks_the_workers_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU 0 is a V100 (7.0, no bf16), GPU 1 an A100 (8.0)."""
    FakeGpus(monkeypatch, 2, [7, 8])
    assert pick_dtype("auto", torch.device("cuda:1")) == torch.bfloat16
    assert pick_dtype("auto", torch.device("cuda:0")) == torch.float16
    assert pick_dtype("float32", torch.device("cuda:0")) == torch.float32

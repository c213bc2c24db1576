"""`torchrun -m zipfstage collect` on CPU (gloo): two ranks fill one store like one process does,
and an error only rank 0 can see (the existing store) stops every rank instead of hanging them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli_helpers import assert_stores_match, cli_env
from tests.test_parallel import SHORT
from zipfstage.cli import app
from zipfstage.collect.placement import Ranks, rank_placement, torchrun_ranks
from zipfstage.config import CollectSettings
from zipfstage.store import open_store

runner = CliRunner()


def torchrun(model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "zipfstage",
        "collect",
        "--model",
        str(model),
        "--out",
        str(out),
        *SHORT,
        *extra,
    ]
    return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=240)


def test_rank_environment_and_placement(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_ranks() is None
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = torchrun_ranks()
    assert ranks == Ranks(3, 4, 1)
    assert rank_placement(CollectSettings(devices=["cpu", "cpu"]), ranks) == ("cpu", None)
    assert rank_placement(CollectSettings(devices=["cuda:4", "cuda:5"]), ranks) == ("cuda:5", None)
    assert rank_placement(CollectSettings(device="cpu"), ranks) == ("cpu", None)


def test_two_ranks_match_one_process(tiny_llama: Path, tmp_path: Path) -> None:
    single = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--out", str(tmp_path / "one"), *SHORT]
    )
    assert single.exit_code == 0, single.output
    done = torchrun(tiny_llama, tmp_path / "ranks")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("collected 1,280 tokens") == 1, "only rank 0 reports"
    assert_stores_match(tmp_path / "one", tmp_path / "ranks")
    assert open_store(tmp_path / "ranks").n_tokens == 1280


def test_error_on_rank_zero_stops_every_rank(tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = runner.invoke(
        app, ["collect", "--model", str(tiny_llama), "--out", str(out), *SHORT, "--seq-len", "16"]
    )
    assert first.exit_code == 0, first.output
    refused = torchrun(tiny_llama, out)  # times out (fails) if rank 1 waits forever
    assert refused.returncode != 0
    assert "different settings" in refused.stderr and "seq_len 16 -> 32" in refused.stderr
    assert "rank 0 stopped the run" in refused.stderr, refused.stderr
    assert open_store(out).info["plan"]["seq_len"] == 16

"""The collect pieces every strategy shares: strategy choice, placement, the same-store check, the
batch-count agreement and the typed messages (no model needed)."""

from __future__ import annotations

import pickle

import pytest
import torch

from zipfstage.collect.coordinator import agreed_batch_count
from zipfstage.collect.messages import Done, Failed, Go, Ready
from zipfstage.collect.placement import Placement, Ranks, Strategy, choose_strategy, place
from zipfstage.collect.spec import StoreSpec, check_same_store
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.store import StorePlan


def spec(config_hash: str, dtype: str) -> StoreSpec:
    plan = StorePlan(batch_size=2, seq_len=8, planned_batches=3)
    return StoreSpec(config_hash, {"dtype": dtype}, plan, ["embed"], ["rms"], [], {})


@pytest.mark.parametrize(
    ("settings", "ranks", "expected"),
    [
        (CollectSettings(), None, Strategy.SINGLE),
        (CollectSettings(devices=["cpu"]), None, Strategy.SINGLE),
        (CollectSettings(devices=["cpu", "cpu"]), None, Strategy.WORKERS),
        (CollectSettings(devices=["cpu", "cpu"], shard_model=True), None, Strategy.SINGLE),
        (CollectSettings(devices=["cpu", "cpu"]), Ranks(0, 1, 0), Strategy.WORKERS),
        (CollectSettings(), Ranks(1, 2, 1), Strategy.TORCHRUN),
        (CollectSettings(devices=["cpu", "cpu"]), Ranks(0, 2, 0), Strategy.TORCHRUN),
    ],
)
def test_strategy_choice(
    settings: CollectSettings, ranks: Ranks | None, expected: Strategy
) -> None:
    assert choose_strategy(settings, ranks) is expected


def test_placement_per_process() -> None:
    two = CollectSettings(devices=["cpu", "cuda:3"])
    assert place(two, 0) == Placement("cpu") and place(two, 1) == Placement("cuda:3")
    assert place(two, 2) == Placement("cpu"), "wraps around"
    assert place(CollectSettings(device="cpu"), 5, torchrun=True) == Placement("cpu")
    assert place(CollectSettings()) == Placement(None), "auto outside torchrun"
    local = place(CollectSettings(), 1, torchrun=True)
    assert local == Placement("cuda:1" if torch.cuda.is_available() else "cpu")
    sharded = place(CollectSettings(devices=["cpu"], shard_model=True))
    assert sharded == Placement("cpu", {"": "cpu"})


def test_same_store_check_names_the_odd_process_and_the_difference() -> None:
    same = spec("a", "float32")
    assert check_same_store([same, spec("a", "float32")], lambda i: f"worker {i}") == same
    with pytest.raises(ZipfstageError) as raised:
        check_same_store([same, spec("a", "float32"), spec("b", "bfloat16")], lambda i: f"rank {i}")
    message = str(raised.value)
    assert "rank 2 would write a different store than rank 0" in message
    assert "dtype 'float32' -> 'bfloat16'" in message


def test_batch_counts_must_agree() -> None:
    assert agreed_batch_count([4, 4, 4], "workers") == 4
    assert agreed_batch_count([4, None], "workers") is None, "one stopped: the run stopped"
    with pytest.raises(
        ZipfstageError, match=r"workers disagree on the number of batches \(\[3, 4\]\)"
    ):
        agreed_batch_count([3, 4], "workers")


def test_failures_keep_user_errors_apart_from_crashes() -> None:
    user = Failed.from_exception(1, ZipfstageError("bad --data"), crash_code=1)
    assert user == Failed(1, "bad --data", ZipfstageError.exit_code) and user.is_user_error
    crash = Failed.from_exception(2, ValueError("boom"), crash_code=1, crash_prefix="rank 2: ")
    assert crash == Failed(2, "rank 2: ValueError: boom", 1) and not crash.is_user_error


def test_messages_survive_pickling() -> None:
    for message in (Ready(0, spec("a", "float32")), Done(1, None), Go([0, 2], True)):
        assert pickle.loads(pickle.dumps(message)) == message

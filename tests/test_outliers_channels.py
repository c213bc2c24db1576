"""Planted Dettmers channels (shares just above and below the thresholds), persistent top-1
channels (share, sign consistency, positions, layers) and super-weight coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.synthetic_store import make_topk_store
from zipfstage.config import OutlierSettings
from zipfstage.outliers import analyse_outliers

LAYERS = tuple(f"layer_{i}" for i in range(8))


def plant_dettmers(
    point: str, batch: int, hidden: np.ndarray, pos: np.ndarray, ids: np.ndarray
) -> None:
    """512 tokens; rows 1..n of the first batch get |h| = 8 in the planted channel."""
    if batch != 0 or point == "embed":
        return
    layer = int(point.split("_")[1])
    plants = {
        3: (33, layer in (0, 1)),  # 6.4 % of tokens in 2 of 8 layers: both thresholds met
        4: (33, layer == 0),  # 1 of 8 layers: below the layer share
        5: (30, True),  # every layer, 5.9 % of tokens: below the position share
        6: (32, layer < 4),  # 6.25 % in half the layers
    }
    for channel, (n, planted) in plants.items():
        if planted:
            hidden[1 : n + 1, channel] = 8.0 * (1 + channel)


@pytest.fixture(scope="module")
def dettmers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dettmers")
    make_topk_store(out, ("embed", *LAYERS), plant=plant_dettmers, n_layers=8)
    return out


def test_dettmers_channels_at_the_thresholds(dettmers_dir: Path) -> None:
    report = analyse_outliers(dettmers_dir, OutlierSettings())
    found = {r["channel"]: r for r in report.dettmers_channels}
    assert set(found) == {3, 6}
    assert found[6]["layer_share"] == 0.5 and found[6]["position_share"] == 32 / 512
    assert found[6]["layers"] == [0, 1, 2, 3]
    assert found[3]["layer_share"] == 0.25 and found[3]["position_share"] == 33 / 512
    assert found[3]["site"] == "resid_post"
    assert [r["channel"] for r in report.dettmers_channels] == [6, 3]


def test_dettmers_thresholds_are_settings(dettmers_dir: Path) -> None:
    looser = OutlierSettings(dettmers_position_share=0.05, dettmers_layer_share=0.1)
    assert {r["channel"] for r in analyse_outliers(dettmers_dir, looser).dettmers_channels} == {
        3,
        4,
        5,
        6,
    }
    higher = OutlierSettings(dettmers_threshold=50.0)  # only channel 6 (|h| = 56) reaches it
    assert {r["channel"] for r in analyse_outliers(dettmers_dir, higher).dettmers_channels} == {6}


def plant_persistent(
    point: str, batch: int, hidden: np.ndarray, pos: np.ndarray, ids: np.ndarray
) -> None:
    """Channel 9 is the top-1 of exactly the tokens at positions 0, 4, 8, ... at layers 1 and 2,
    negative at positions 4, 20, 36, 52 (a quarter of them)."""
    if point not in ("layer_1", "layer_2"):
        return
    carrier = pos % 4 == 0
    hidden[~carrier, 9] *= 0.01
    hidden[carrier, 9] = np.where(pos[carrier] % 16 == 4, -10.0, 10.0)
    ids[pos == 0] = 1


@pytest.fixture(scope="module")
def persistent_report(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("persistent")
    make_topk_store(
        out, ("embed", "layer_0", "layer_1", "layer_2", "layer_3"), plant=plant_persistent
    )
    return analyse_outliers(out, OutlierSettings(top_channels=5))


def test_persistent_channel_share_sign_positions_layers(persistent_report) -> None:
    channels = persistent_report.points["layer_1"]["persistent_channels"]
    assert len(channels) == 5
    top = channels[0]
    assert top["channel"] == 9
    assert top["top1_share"] == 128 / 512
    assert top["sign_consistency"] == pytest.approx(0.5) and top["sign"] == 1
    assert top["positions"]["position_0_share"] == 8 / 128
    assert top["positions"]["mean_position"] == pytest.approx(30.0)
    assert top["layers"] == [1, 2]
    shares = persistent_report.points["layer_1"]["top1_shares"]
    assert shares["9"] == 0.25 and sum(shares.values()) == pytest.approx(1.0)
    assert "9" not in persistent_report.points["layer_3"]["top1_shares"] or (
        persistent_report.points["layer_3"]["top1_shares"]["9"] < 0.1
    )


def plant_super(
    point: str, batch: int, hidden: np.ndarray, pos: np.ndarray, ids: np.ndarray
) -> None:
    """Layer 1: mlp_act channel 11 and mlp_out channel 5 spike on the same tokens (position 5).
    Layer 2: both spike, but on different tokens, so there is no candidate."""
    spikes = {
        "layer_1.mlp_act": (11, 5, 300.0),
        "layer_1.mlp_out": (5, 5, 200.0),
        "layer_2.mlp_act": (20, 5, 300.0),
        "layer_2.mlp_out": (6, 9, 200.0),
    }
    if point in spikes:
        channel, position, value = spikes[point]
        hidden[pos == position, channel] = value


def test_super_weight_coordinates(tmp_path: Path) -> None:
    points = (
        "layer_1.mlp_act",
        "layer_1.mlp_out",
        "layer_1",
        "layer_2.mlp_act",
        "layer_2.mlp_out",
        "layer_2",
    )
    widths = {"layer_1.mlp_act": 64, "layer_2.mlp_act": 64}
    make_topk_store(tmp_path, points, plant=plant_super, widths=widths)
    report = analyse_outliers(tmp_path, OutlierSettings())
    assert len(report.super_weights) == 1
    candidate = report.super_weights[0]
    assert (candidate["layer"], candidate["row"], candidate["column"]) == (1, 5, 11)
    assert candidate["mlp_act_max"] == pytest.approx(300.0)
    assert candidate["mlp_out_max"] == pytest.approx(200.0)
    assert candidate["n_tokens"] == 8 and candidate["cooccurrence"] == 1.0
    assert report.points["layer_1.mlp_act"]["width"] == 64
    assert report.points["layer_1.mlp_act"]["site"] == "mlp_act"
    assert report.first_massive_layer is None  # mlp_act is not the residual stream

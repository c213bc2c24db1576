"""`zipfstage ablate` end to end on a tiny Llama whose BOS token carries a massive value, and its
refusals: bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.tiny_models import build_model, tiny_config
from zipfstage.cli import app
from zipfstage.config import CollectSettings, OutlierSettings

runner = CliRunner()
SPIKE_CHANNEL = 7
SPIKE = -400.0  # negative: a mean that dropped the stored signs would be wrong
SETTINGS = ["--eval-tokens", "256", "--controls", "5", "--format", "png"]


def save_model(model: torch.nn.Module, folder: Path, tokenizer_dir: Path) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def spiked_llama(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """BOS (id 0) carries -400 in channel 7 of the embedding: massive from the first block on."""
    model = build_model("llama")
    with torch.no_grad():
        model.get_input_embeddings().weight[0, SPIKE_CHANNEL] = SPIKE
    return save_model(model, tmp_path_factory.mktemp("spiked"), tokenizer_dir)


def collected_run(folder: Path, model: Path, points: list[str]) -> Path:
    from zipfstage.collect.runner import run_collect
    from zipfstage.outliers.stage import run as analyse

    settings = CollectSettings(
        model=str(model), points=points, max_tokens=512, seq_len=64, batch_size=4,
        metrics=["rms", "median_abs", "hill_tail", "channel_wise"], channels=8,
    )  # fmt: skip
    run_collect(settings, folder, quiet=True)
    analyse(OutlierSettings(), folder)
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, spiked_llama: Path) -> Path:
    return collected_run(tmp_path_factory.mktemp("full"), spiked_llama, ["all"])


def test_ablate_finds_and_edits_the_massive_channel(full_run: Path) -> None:
    result = runner.invoke(app, ["ablate", "--out", str(full_run), *SETTINGS])
    assert result.exit_code == 0, result.output
    data = json.loads((full_run / "ablate.json").read_text())
    assert data["massive"]["layer"] == 0 and data["massive"]["channels"] == [SPIKE_CHANNEL]
    assert data["eval"]["skipped_tokens"] == 512 and data["eval"]["tokens"] == 256
    rows = {r["name"]: r for r in data["interventions"]}
    assert rows["baseline"]["ratio"] == 1.0
    for mode in ("zero", "mean", "typical"):
        row = rows[f"massive {mode}"]
        assert row["tokens"] == "carriers" and row["channels"] == [SPIKE_CHANNEL]
        assert row["controls"]["n"] == 5
        controls = [r for r in data["interventions"] if r["control_of"] == row["name"]]
        assert all(SPIKE_CHANNEL not in r["channels"] for r in controls)
        assert len({tuple(r["channels"]) for r in controls}) > 1  # the seeds differ
        assert set(row["delta_loss_by_position"]) == {"1", "2-7", "8-31", "32-63"}
    # the mean over the carriers comes from the store's top-k arrays, exact
    mean = rows["massive mean"]
    assert mean["value_source"].startswith("store top-k")
    assert mean["values"]["0"][0] == pytest.approx(SPIKE, rel=0.05)
    # zeroing the spike at block 0: the watched channel is gone at block 1 (nothing rebuilds it)
    assert rows["baseline"]["massive_after"]["max_abs"][1][0] > 100
    assert rows["massive zero"]["massive_after"]["max_abs"][1][0] < 10
    assert (full_run / "plots" / "ablate.png").stat().st_size > 5000
    assert not list(full_run.glob(".*.tmp")) and not list((full_run / "plots").glob(".*"))


def test_stored_mean_equals_the_mean_of_the_collected_batches_run_again(
    full_run: Path, spiked_llama: Path
) -> None:
    """Two independent sources of Sun's set-to-mean value: the store's top-k arrays, and the
    model run again over the collected text with the values read by hooks."""
    from zipfstage.ablate.loading import batches, collect_settings, load_run_model, read_texts
    from zipfstage.ablate.spec import TokenRule
    from zipfstage.ablate.values import calibrate, stored_mean
    from zipfstage.config import AblateSettings
    from zipfstage.store.reader import open_store

    reader = open_store(full_run)
    settings = AblateSettings(eval_tokens=64, calibration_tokens=512)
    collect = collect_settings(reader, settings)
    loaded = load_run_model(collect, reader)
    texts = read_texts(collect, settings, loaded.tokenizer, reader)
    rule = TokenRule("carriers", (SPIKE_CHANNEL,), 200.0)
    need = (0, (SPIKE_CHANNEL,), rule)
    stats = calibrate(loaded.model, loaded.architecture, batches(texts.calibration, 4), [need])
    again, n_again = stats[need].selected_mean()
    stored, n_stored = stored_mean(reader, 0, (SPIKE_CHANNEL,), rule) or (None, 0)
    assert n_stored == n_again == 8  # one BOS per sequence, 512 / 64 sequences
    assert stored == pytest.approx(again, rel=1e-5)
    # a channel not in every carrier's top-k has no exact stored mean
    assert stored_mean(reader, 0, (SPIKE_CHANNEL, 40), rule) is None


def test_a_run_without_every_layer_finds_the_massive_layer_itself(
    tmp_path: Path, spiked_llama: Path
) -> None:
    run = collected_run(tmp_path / "run", spiked_llama, ["embed", "last"])
    result = runner.invoke(
        app, ["ablate", "--out", str(run), *SETTINGS, "--target", "massive", "--mode", "zero"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((run / "ablate.json").read_text())
    assert data["massive"]["layer"] == 0 and data["massive"]["source"].startswith("found on")
    assert "did not collect every block output" in " ".join(data["notes"])
    assert [r["name"] for r in data["interventions"]][:2] == ["baseline", "massive zero"]


def other_model(kind: str, tmp_path: Path, tokenizer_dir: Path) -> Path:
    from transformers import AutoModelForCausalLM

    config = tiny_config("gpt2" if kind == "architecture" else "llama")
    if kind == "layers":
        config.num_hidden_layers = 3
    if kind == "hidden":
        config.hidden_size, config.head_dim = 64, 16
    torch.manual_seed(0)
    return save_model(AutoModelForCausalLM.from_config(config), tmp_path / kind, tokenizer_dir)


BAD = {
    "unknown layer": (["--target", "layer_9:3"], "layers 0-3, not layer 9"),
    "unknown channel": (["--target", "layer_1:3,48"], "channels 0-47, not 48"),
    "bad target": (["--target", "layer_1"], "is not one of"),
    "other model name": (["--model", "someone/another-model"], "is not the model this run"),
    "other revision": (["--revision", "v2"], "differs from the run's"),
    "super weight mode": (["--target", "super_weight", "--mode", "mean"], "zeroes weights"),
    "several devices": (["--devices", "cpu,cpu"], "one copy of the model"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(full_run: Path, case: str) -> None:
    args, message = BAD[case]
    (full_run / "ablate.json").unlink(missing_ok=True)
    result = runner.invoke(app, ["ablate", "--out", str(full_run), *SETTINGS, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (full_run / "ablate.json").exists()


@pytest.mark.parametrize("kind", ["architecture", "layers", "hidden"])
def test_a_model_of_another_shape_is_refused(
    full_run: Path, tmp_path: Path, tokenizer_dir: Path, kind: str
) -> None:
    folder = other_model(kind, tmp_path, tokenizer_dir)
    (full_run / "ablate.json").unlink(missing_ok=True)
    result = runner.invoke(
        app, ["ablate", "--out", str(full_run), *SETTINGS, "--model", str(folder)]
    )
    assert result.exit_code == 2, result.output
    expected = {"architecture": "architecture", "layers": "n layers 3", "hidden": "hidden size 64"}
    assert expected[kind] in result.output and "give the model this run collected" in result.output
    assert not (full_run / "ablate.json").exists()


def test_massive_without_outliers_json_is_refused(tmp_path: Path, full_run: Path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(full_run, run)
    (run / "outliers.json").unlink()
    (run / "ablate.json").unlink(missing_ok=True)
    shutil.rmtree(run / "plots", ignore_errors=True)
    result = runner.invoke(app, ["ablate", "--out", str(run), *SETTINGS, "--target", "massive"])
    assert result.exit_code == 2, result.output
    assert "no outliers.json" in result.output and "zipfstage fit" in result.output
    assert not (run / "ablate.json").exists() and not (run / "plots").exists()


def test_too_little_text_left_asks_for_data(full_run: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("a few words only. " * 20)
    result = runner.invoke(app, ["ablate", "--out", str(full_run), *SETTINGS, "--data", str(small)])
    assert result.exit_code == 2, result.output
    assert "--data" in result.output and "has only" in result.output
    assert np.isfinite(1.0)


def test_ctrl_c_leaves_the_previous_result_whole(
    full_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zipfstage.ablate import stage

    previous = '{"interventions": [], "note": "the result before"}'
    (full_run / "ablate.json").write_text(previous)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "evaluate", interrupted)
    result = runner.invoke(app, ["ablate", "--out", str(full_run), *SETTINGS])
    assert result.exit_code == 130 and "interrupted" in result.output
    assert (full_run / "ablate.json").read_text() == previous
    assert not list(full_run.glob(".*tmp*")) and not list((full_run / "plots").glob(".*"))

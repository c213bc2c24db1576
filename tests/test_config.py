"""Settings precedence: defaults < YAML < environment < CLI; unknown keys fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from zipfstage.cli import app
from zipfstage.config import Settings
from zipfstage.errors import ZipfstageError

runner = CliRunner()
DEFAULT_YAML = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def test_default_yaml_equals_built_in_defaults() -> None:
    assert yaml.safe_load(DEFAULT_YAML.read_text()) == Settings.load().model_dump(mode="json")


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("collect:\n  seq_len: 64\n  batch_size: 3\n  max_tokens: 500\n")
    monkeypatch.setenv("ZIPFSTAGE_COLLECT__BATCH_SIZE", "5")
    monkeypatch.setenv("ZIPFSTAGE_COLLECT__MAX_TOKENS", "900")
    settings = Settings.load(config, collect={"max_tokens": 1234, "model": None})
    assert settings.collect.seq_len == 64  # YAML over default
    assert settings.collect.batch_size == 5  # environment over YAML
    assert settings.collect.max_tokens == 1234  # CLI over environment
    assert settings.collect.model == "demo"  # None means "not given"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collect:\n  seqlen: 5\n", "collect.seqlen"),
        ("colect: {}\n", "colect"),
        ("collect:\n  max_tokens: -1\n", "max_tokens"),
        ("collect: [1, \n", "not valid YAML"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ZipfstageError, match=message):
        Settings.load(config)


def test_config_command_prints_resolved_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("fit:\n  bootstrap: 100\n")
    monkeypatch.setenv("ZIPFSTAGE_PLOT__DPI", "300")
    result = runner.invoke(app, ["config", "--config", str(config), "--out", "elsewhere"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["fit"]["bootstrap"] == 100
    assert printed["plot"]["dpi"] == 300
    assert printed["out"] == "elsewhere"


def test_config_command_rejects_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("fit:\n  bootstrapp: 1\n")
    result = runner.invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 2
    assert "fit.bootstrapp" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "holds a list, not a mapping"), ("just words\n", "holds a str")],
)
def test_config_file_that_is_not_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "list.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_config_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "--config", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_out_of_range_option_is_one_line() -> None:
    result = runner.invoke(app, ["report", "--top-tokens", "-1"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:")
    assert "--top-tokens" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_section_in_environment_that_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIPFSTAGE_COLLECT", "{bad")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "ZIPFSTAGE_COLLECT is not a JSON object" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_misspelt_environment_variable_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIPFSTAGE_COLLECT_MAX_TOKENS", "5")  # one underscore: sets nothing
    monkeypatch.setenv("ZIPFSTAGE_FIT__BOOTSTRAP", "3")  # a real key: no warning
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0
    assert "ZIPFSTAGE_COLLECT_MAX_TOKENS sets no setting" in result.output
    assert "ZIPFSTAGE_FIT__BOOTSTRAP" not in result.output


def test_unknown_environment_keys() -> None:
    from zipfstage.config import unknown_environment_keys

    environ = {
        "ZIPFSTAGE_OUT": "x",
        "ZIPFSTAGE_COLLECT": "{}",
        "ZIPFSTAGE_PLOT__DPI": "1",
        "ZIPFSTAGE_CACHE": "/tmp",
        "ZIPFSTAGE_PLOT__DPII": "1",
        "ZIPFSTAGE_OUT__X": "1",
        "ZIPFSTAGE_NOPE": "1",
        "HOME": "/root",
    }
    assert unknown_environment_keys(environ) == [
        "ZIPFSTAGE_NOPE",
        "ZIPFSTAGE_OUT__X",
        "ZIPFSTAGE_PLOT__DPII",
    ]

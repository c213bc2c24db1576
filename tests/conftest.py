"""Shared fixtures: tiny random models with a locally trained tokenizer, built once per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_models import build_tiny_model, train_tokenizer


@pytest.fixture(autouse=True)
def _quiet_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No colour, no network, caches in a temp dir, no stray ZIPFSTAGE_* settings."""
    for key in list(os.environ):
        if key.startswith("ZIPFSTAGE_") and key != "ZIPFSTAGE_CACHE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf-datasets"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    return build_tiny_model("llama", tmp_path_factory.mktemp("llama"), tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    return build_tiny_model("qwen3", tmp_path_factory.mktemp("qwen3"), tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    return build_tiny_model("gpt2", tmp_path_factory.mktemp("gpt2"), tokenizer_dir)


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few local text files of real English (pydoc topics)."""
    from pydoc_data import topics

    folder = tmp_path_factory.mktemp("corpus")
    for i, key in enumerate(sorted(topics.topics)[:12]):
        (folder / f"{i:02d}-{key}.txt").write_text(topics.topics[key])
    return folder

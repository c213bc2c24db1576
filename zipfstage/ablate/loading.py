"""The run's model, loaded exactly as collect loaded it, and the text ablate evaluates on.

The model: collect's own settings (from the store), with collect's loader and placement; `--model`
/ `--revision` may say where the same weights live, and `--device`, `--gpus`, `--shard-model`
where they run. A model that is not the one the store describes (name, revision, architecture,
layer count, hidden size) is refused in one line, before anything is written.

The text: the run's corpus packed as collect packed it. The first sequences are the collected
ones (checked against the stored token ids: the mean / typical values come from them); the eval
sequences are those after the last sequence collect was asked for, so none was collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from zipfstage.collect.corpus import DataSpec, check_data_spec, iter_documents, pack_sequences
from zipfstage.collect.models import DEMO_DESCRIPTION, DEMO_MODEL, LoadedModel, load_model
from zipfstage.collect.placement import place
from zipfstage.config import AblateSettings, CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.store.layout import TOKEN_IDS, array_at
from zipfstage.store.reader import StoreReader

#: the store's model attributes a loaded model must match
CHECKED = ("architecture", "model_type", "n_layers", "hidden_size")


def collect_settings(reader: StoreReader, settings: AblateSettings) -> CollectSettings:
    """Collect's settings as the store recorded them, with ablate's model and device overrides."""
    stored = dict(reader.info.get("config") or {})
    known = {k: v for k, v in stored.items() if k in CollectSettings.model_fields}
    overrides: dict[str, Any] = {
        "model": settings.model or known.get("model", DEMO_MODEL),
        "revision": settings.revision if settings.revision is not None else known.get("revision"),
        "dtype": _stored_dtype(reader),
        "device": settings.device,
        "devices": settings.devices,
        "shard_model": settings.shard_model,
    }
    return CollectSettings.model_validate({**known, **overrides})


def _stored_dtype(reader: StoreReader) -> str:
    dtype = str((reader.info.get("model") or {}).get("dtype") or "auto")
    return dtype if dtype in ("bfloat16", "float16", "float32") else "auto"


def check_model_name(settings: CollectSettings, reader: StoreReader) -> None:
    """Refuse another model by name or revision before loading it. A local folder or .gguf file
    is taken as the place the same weights live; its structure is checked once loaded."""
    model = reader.info.get("model") or {}
    stored_name = str(model.get("name"))
    stored_setting = str((reader.info.get("config") or {}).get("model"))
    name = DEMO_DESCRIPTION if settings.model == DEMO_MODEL else settings.model
    local = Path(settings.model).expanduser().exists() or settings.model.endswith(".gguf")
    if not local and name not in (stored_name, stored_setting):
        raise ZipfstageError(
            f"--model {settings.model} is not the model this run collected ({stored_name}); "
            "ablate runs the run's own model"
        )
    if settings.revision != model.get("revision"):
        raise ZipfstageError(
            f"--revision {settings.revision} differs from the run's ({model.get('revision')}); "
            "ablate runs the revision collect ran"
        )


def check_loaded_model(loaded: LoadedModel, reader: StoreReader) -> None:
    """The loaded model must have the architecture, layers and width the store describes."""
    stored = reader.info.get("model") or {}
    found = loaded.describe()
    for key in CHECKED:
        if key in stored and stored[key] != found[key]:
            raise ZipfstageError(
                f"the model loaded from {loaded.name} has {key.replace('_', ' ')} {found[key]}, "
                f"the run's has {stored[key]}: give the model this run collected"
            )


def load_run_model(settings: CollectSettings, reader: StoreReader) -> LoadedModel:
    """Load as collect did (its loader, dtype and placement), then check it is the run's model."""
    if len(settings.devices or []) > 1 and not settings.shard_model:
        raise ZipfstageError(
            "ablate runs one copy of the model: give one device, or --shard-model to spread it "
            "over the listed GPUs"
        )
    check_model_name(settings, reader)
    placement = place(settings)
    loaded = load_model(
        settings.model, settings.revision, settings.dtype, placement.device, placement.device_map
    )
    check_loaded_model(loaded, reader)
    return loaded


@dataclass(frozen=True)
class Texts:
    """The calibration sequences (collected ones) and the eval sequences (never collected)."""

    calibration: list[np.ndarray]
    eval: list[np.ndarray]
    source: str
    skipped: int


def eval_spec(collect: CollectSettings, settings: AblateSettings) -> tuple[DataSpec, bool]:
    """The eval text's source, and whether it is the run's own corpus (then collect's part is
    skipped)."""
    run = DataSpec(collect.data, collect.subset, collect.split, collect.text_field)
    if settings.data is None:
        return run, True
    spec = DataSpec(
        settings.data,
        settings.subset,
        settings.split or "train",
        settings.text_field or "text",
    )
    check_data_spec(spec)
    return spec, spec == run


def read_texts(
    collect: CollectSettings, settings: AblateSettings, tokenizer: Any, reader: StoreReader
) -> Texts:
    """Pack the calibration and eval sequences; one line when too little text is left."""
    seq_len = collect.seq_len
    collected = collect.max_tokens // seq_len
    wanted = max(1, settings.eval_tokens // seq_len)
    run_spec = DataSpec(collect.data, collect.subset, collect.split, collect.text_field)
    sequences = pack_sequences(iter_documents(run_spec), tokenizer, seq_len, collect.prepend_bos)
    calibration_count = min(collected, max(1, settings.calibration_tokens // seq_len))
    calibration = list(islice(sequences, calibration_count))
    check_calibration(calibration, reader)
    spec, same = eval_spec(collect, settings)
    if same:
        for _ in islice(sequences, collected - calibration_count):
            pass
    else:
        sequences = pack_sequences(iter_documents(spec), tokenizer, seq_len, collect.prepend_bos)
    evaluation = list(islice(sequences, wanted))
    if len(evaluation) < wanted:
        where = f"after the {collected * seq_len:,} tokens collect used" if same else ""
        raise ZipfstageError(
            f"the corpus {spec.source!r} has only {len(evaluation) * seq_len:,} tokens {where} "
            f"for --eval-tokens {settings.eval_tokens:,}: give another source with --data "
            "(or lower --eval-tokens)".replace("  ", " ")
        )
    return Texts(calibration, evaluation, spec.source, collected * seq_len if same else 0)


def check_calibration(sequences: list[np.ndarray], reader: StoreReader) -> None:
    """The regenerated collected sequences must be the stored ones (the corpus is unchanged)."""
    if not sequences:
        raise ZipfstageError("the run's corpus gives no sequence: it changed since collect")
    flat = np.concatenate(sequences)
    stored = np.asarray(array_at(reader.root, TOKEN_IDS)[: len(flat)])
    committed = reader.committed_rows[: len(stored)]
    if len(stored) < len(flat) or not np.array_equal(flat[committed], stored[committed]):
        raise ZipfstageError(
            "the run's corpus no longer gives the text collect stored (its token ids differ): "
            "ablate needs the run's own text for its mean and typical values"
        )


def batches(sequences: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    return [np.stack(sequences[i : i + batch_size]) for i in range(0, len(sequences), batch_size)]

"""Planning and validation: settings in, a checked run (shape, points, channels, identity) out.

Every input is checked before the store is touched, so bad input leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zipfstage.collect.attention_site import check_attention_site
from zipfstage.collect.corpus import (
    DataSpec,
    check_data_spec,
    iter_batches,
    iter_documents,
    pack_sequences,
)
from zipfstage.collect.hooks import hook_for
from zipfstage.collect.metrics import CHANNEL_WISE, resolve_metrics
from zipfstage.collect.models import LoadedModel, load_model
from zipfstage.collect.placement import Placement
from zipfstage.collect.points import Point, check_point_syntax, resolve_points, resolve_sites
from zipfstage.collect.spec import StoreSpec, package_versions
from zipfstage.config import CollectSettings, collect_identity, stable_hash
from zipfstage.errors import ZipfstageError
from zipfstage.store import StorePlan, TopkLayout
from zipfstage.store.layout import SCHEMA_VERSION, tokenizer_path
from zipfstage.store.values import half_dtype


@dataclass(frozen=True)
class RunShape:
    """What the settings ask for, checked before anything expensive happens."""

    metrics: list[str]
    data: DataSpec
    max_sequences: int

    def planned_batches(self, batch_size: int) -> int:
        return math.ceil(self.max_sequences / batch_size)


def validate_settings(settings: CollectSettings, out_dir: Path) -> RunShape:
    """Cheap checks that need no model: names, sizes, paths."""
    metrics = resolve_metrics(settings.metrics)
    if settings.channels == 0 and CHANNEL_WISE in metrics:
        if "all" not in settings.metrics:
            raise ZipfstageError("metric channel_wise needs --channels of at least 1")
        metrics.remove(CHANNEL_WISE)
    check_point_syntax(settings.points, settings.sites)
    max_sequences = settings.max_tokens // settings.seq_len
    if max_sequences == 0:
        raise ZipfstageError(
            f"--max-tokens {settings.max_tokens} is less than one sequence of --seq-len "
            f"{settings.seq_len}; raise --max-tokens or lower --seq-len"
        )
    data = DataSpec(settings.data, settings.subset, settings.split, settings.text_field)
    check_data_spec(data)
    check_writable(out_dir)
    return RunShape(metrics, data, max_sequences)


def check_writable(out_dir: Path) -> None:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ZipfstageError(f"--out {out_dir} is a file; give a directory")
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ZipfstageError(f"--out {out_dir} is not writable ({existing} does not allow writing)")


def sample_channels(width: int, count: int, seed: int) -> list[int]:
    """The channel indices channel_wise keeps at vectors of `width`, drawn once from the seed."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(width, size=min(count, width), replace=False).tolist())


def point_widths(loaded: LoadedModel, points: list[Point]) -> dict[str, int]:
    """Each hidden-state point's vector width (d_model, or d_ff at mlp_act); fails on a site the
    model lacks."""
    return {p.name: hook_for(loaded.architecture, p).width for p in points if not p.is_attention}


def attention_widths(loaded: LoadedModel, points: list[Point]) -> dict[str, int]:
    """Each attn point's number of heads (the columns of its arrays)."""
    return {p.name: hook_for(loaded.architecture, p).width for p in points if p.is_attention}


def channels_by_width(widths: set[int], count: int, seed: int) -> dict[int, list[int]]:
    """One channel sample per width, each with the same rule and seed."""
    return {width: sample_channels(width, count, seed) for width in sorted(widths)}


def batch_stream(
    settings: CollectSettings, shape: RunShape, tokenizer: Any
) -> Iterator[np.ndarray]:
    """The deterministic sequence of [rows, seq_len] token batches."""
    sequences = pack_sequences(
        iter_documents(shape.data), tokenizer, settings.seq_len, settings.prepend_bos
    )
    return iter_batches(sequences, settings.batch_size, shape.max_sequences)


@dataclass
class PreparedRun:
    """A validated run: the model, the resolved points, the channels and the store identity."""

    settings: CollectSettings
    shape: RunShape
    loaded: LoadedModel
    points: list[Point]
    channel_indices: list[int]
    identity: dict[str, Any]
    config_hash: str
    #: vector width of each point, and the channel_wise sample of each width
    widths: dict[str, int]
    channels_by_width: dict[int, list[int]]
    #: the attn points and their number of heads
    attention: dict[str, int] = field(default_factory=dict)

    @property
    def point_channels(self) -> dict[str, list[int]]:
        return {name: self.channels_by_width[width] for name, width in self.widths.items()}

    @property
    def plan(self) -> StorePlan:
        return StorePlan(
            batch_size=self.settings.batch_size,
            seq_len=self.settings.seq_len,
            planned_batches=self.shape.planned_batches(self.settings.batch_size),
        )

    def batches(self) -> Iterator[np.ndarray]:
        return batch_stream(self.settings, self.shape, self.loaded.tokenizer)

    def save_tokenizer(self, out_dir: Path) -> None:
        """Keep the tokenizer beside the store so `report` can decode tokens without the model."""
        if not tokenizer_path(out_dir).exists():
            self.loaded.tokenizer.save_pretrained(tokenizer_path(out_dir))

    def at_points(self, points: list[Point]) -> PreparedRun:
        """The same run at other points, with their widths and channel samples (no reload)."""
        widths = point_widths(self.loaded, points)
        hidden = self.loaded.architecture.hidden_size
        by_width = channels_by_width(
            {hidden, *widths.values()}, self.settings.channels, self.settings.seed
        )
        attention = attention_widths(self.loaded, points)
        return replace(
            self, points=points, widths=widths, channels_by_width=by_width, attention=attention
        )

    def spec(self) -> StoreSpec:
        """What the coordinator needs to create or check the store, without the model."""
        return StoreSpec(
            config_hash=self.config_hash,
            identity=self.identity,
            plan=self.plan,
            points=[p.name for p in self.points if not p.is_attention],
            metrics=self.shape.metrics,
            channel_indices=self.channel_indices,
            attributes=store_attributes(self),
            topk=self.topk_layouts(),
            point_channels=self.point_channels,
            value_dtype=half_dtype(self.identity["dtype"]),
            attention=self.attention,
        )

    def topk_layouts(self) -> dict[str, TopkLayout]:
        """Each point's top-k columns: --topk clamped to the width there; none with --topk 0."""
        k = self.settings.topk
        if k == 0:
            return {}
        return {name: TopkLayout(min(k, d), k, d) for name, d in self.widths.items()}


def prepare_run(settings: CollectSettings, out_dir: Path, placement: Placement) -> PreparedRun:
    """Validate everything, load the model and read the first batch: no store is touched."""
    shape = validate_settings(settings, out_dir)
    loaded = load_model(
        settings.model, settings.revision, settings.dtype, placement.device, placement.device_map
    )
    check_positions(settings, loaded)
    points = resolve_points(
        settings.points, loaded.architecture.n_layers, resolve_sites(settings.sites)
    )
    widths = point_widths(loaded, points)
    first = next(batch_stream(settings, shape, loaded.tokenizer), None)
    if first is None:
        raise ZipfstageError(
            f"the data {settings.data!r} gave no full sequence of {settings.seq_len} tokens "
            "(empty or too short); check --data, --text-field or lower --seq-len"
        )
    probe = torch.from_numpy(first[:1, :16]).to(loaded.device)
    check_attention_site(loaded.architecture, points, probe, loaded.tokenizer.bos_token_id)
    hidden = loaded.architecture.hidden_size
    by_width = channels_by_width({hidden, *widths.values()}, settings.channels, settings.seed)
    identity = {
        "collect": collect_identity(settings),
        "model": {k: v for k, v in loaded.describe().items() if k != "dtype"},
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "data": shape.data.describe(),
        "data_fingerprint": hashlib.sha256(first.tobytes()).hexdigest()[:16],
    }
    return PreparedRun(
        settings,
        shape,
        loaded,
        points,
        by_width[hidden],
        identity,
        stable_hash(identity),
        widths,
        by_width,
        attention_widths(loaded, points),
    )


def position_limit(model: Any) -> int | None:
    """The longest sequence a model with learned absolute positions can take (GPT-2's
    `n_positions`, a position embedding table); None when positions are not capped (rotary)."""
    config = getattr(model, "config", None)
    limit = getattr(config, "n_positions", None)
    if isinstance(limit, int) and not isinstance(limit, bool):
        return limit
    for name, module in model.named_modules() if hasattr(model, "named_modules") else ():
        if name.rsplit(".", 1)[-1] in ("wpe", "embed_positions", "position_embeddings"):
            rows = getattr(module, "num_embeddings", None)
            if isinstance(rows, int):
                return rows - int(getattr(module, "offset", 0) or 0)
    return None


def check_positions(settings: CollectSettings, loaded: LoadedModel) -> None:
    """Refuse a --seq-len the model cannot embed, before the store is touched."""
    limit = position_limit(loaded.model)
    if limit is not None and settings.seq_len > limit:
        raise ZipfstageError(
            f"--seq-len {settings.seq_len} is longer than {loaded.name} can take ({limit} "
            "positions); lower --seq-len"
        )


def store_attributes(run: PreparedRun) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "config": run.identity["collect"],
        "config_hash": run.config_hash,
        "identity": run.identity,
        "model": run.loaded.describe(),
        "data": {**run.shape.data.describe(), "fingerprint": run.identity["data_fingerprint"]},
        "versions": package_versions(),
        "point_layers": {p.name: p.depth for p in run.points if not p.is_attention},
        **topk_attributes(run.settings.topk, run.topk_layouts()),
        "channels_by_width": {str(w): c for w, c in run.channels_by_width.items()},
        "collect_seconds": 0.0,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def topk_attributes(requested: int, layouts: dict[str, TopkLayout]) -> dict[str, Any]:
    """The root attribute "topk": what was asked, what each point got, and a note when clamped."""
    if not layouts:
        return {}
    info: dict[str, Any] = {
        "k_requested": requested,
        "k": {name: layout.k for name, layout in layouts.items()},
    }
    clamped = sorted({layout.width for layout in layouts.values() if layout.k < requested})
    if clamped:
        widths = ", ".join(str(w) for w in clamped)
        info["note"] = f"--topk {requested} is larger than the vector width {widths}; clamped to it"
    return {"topk": info}

"""The outlier-channel analysis of a store: read the top-k arrays point by point, one chunk at a
time, and write RUN_DIR/outliers.json (see OUTLIERS_CONTRACT) and a copy in the store's `outliers`
group, stamped with the store's config hash and token count so a stale analysis is detectable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import zarr

from zipfstage.config import OutlierSettings
from zipfstage.errors import ZipfstageError
from zipfstage.outliers.channel_tail import HillAccumulator
from zipfstage.outliers.dettmers import DettmersCounter, dettmers_channels
from zipfstage.outliers.persistence import PersistenceCounter, add_layers
from zipfstage.outliers.sinks import sink_analysis
from zipfstage.outliers.source import PointInfo, iter_chunks, topk_points
from zipfstage.outliers.sun import Decode, MassiveAccumulator, massive_summary
from zipfstage.outliers.super_weight import ChannelMax, super_weight_candidate, super_weight_pairs
from zipfstage.records import jsonable
from zipfstage.stage import Progress
from zipfstage.store.derived import read_derived
from zipfstage.store.layout import RunFolder, store_path
from zipfstage.store.reader import StoreReader, open_store
from zipfstage.store.tokenizer import load_decoder

SCHEMA = 1
OUTLIERS_GROUP = "outliers"
#: sites of the residual stream, where Sun et al. look for massive activations
RESIDUAL_SITES = ("embed", "resid_post", "resid_mid")


@dataclass
class OutlierReport:
    """The analysis, shaped as outliers.json (`to_json`)."""

    store_id: str
    n_tokens_store: int
    settings: dict[str, Any]
    n_layers: int | None
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_massive_layer: int | None = None
    dettmers_channels: list[dict[str, Any]] = field(default_factory=list)
    super_weights: list[dict[str, Any]] = field(default_factory=list)
    #: sink share per layer and the first sink layer (`sinks.sink_analysis`); None without attn
    attention_sinks: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **jsonable(asdict(self))}


def outliers_path(run_dir: Path) -> Path:
    return RunFolder.at(run_dir).outliers_json


def analyse_outliers(
    run_dir: Path, settings: OutlierSettings, progress: Progress | None = None
) -> OutlierReport:
    """Analyse every point that has the top-k arrays; ZipfstageError when none has them."""
    reader = open_store(Path(run_dir))
    reader.require_data()
    infos = topk_points(reader)
    if not infos:
        raise ZipfstageError(
            f"the store in {run_dir} has no top-k channel arrays: collect with --topk K (K > 0)"
        )
    decode = _decoder(Path(run_dir))
    model = reader.info.get("model") or {}
    report = OutlierReport(
        store_id=reader.attributes.generation,
        n_tokens_store=reader.n_tokens,
        settings=settings.model_dump(mode="json"),
        n_layers=model.get("n_layers"),
    )
    pairs = super_weight_pairs(infos)
    total = len(infos) + len(pairs)
    shares: dict[str, dict[int, float]] = {}
    dettmers: list[tuple[PointInfo, Any]] = []
    maxima: dict[str, ChannelMax] = {}
    for done, info in enumerate(infos, start=1):
        record, counter, top1, channel_max = _analyse_point(reader, info, settings, decode)
        report.points[info.name] = record
        dettmers.append((info, counter.shares()))
        shares[info.name] = top1
        if channel_max is not None:
            maxima[info.name] = channel_max
        if progress:
            progress(done, total)
    add_layers(report.points, infos, shares)
    report.first_massive_layer = _first_massive_layer(report.points, infos)
    report.attention_sinks = sink_analysis(reader, report.first_massive_layer, report.n_layers)
    report.dettmers_channels = dettmers_channels(
        dettmers, settings.dettmers_layer_share, settings.dettmers_position_share
    )
    for done, (act, out) in enumerate(pairs, start=len(infos) + 1):
        candidate = super_weight_candidate(
            reader,
            (act, maxima[act.name]),
            (out, maxima[out.name]),
            settings.super_ratio,
            settings.skip_positions,
        )
        if candidate is not None:
            report.super_weights.append(candidate)
        if progress:
            progress(done, total)
    return report


def _analyse_point(
    reader: StoreReader, info: PointInfo, settings: OutlierSettings, decode: Decode
) -> tuple[dict[str, Any], DettmersCounter, dict[int, float], ChannelMax | None]:
    """One pass over one point's chunks feeds every accumulator."""
    massive = MassiveAccumulator()
    counter = DettmersCounter(info.width, settings.dettmers_threshold)
    persistence = PersistenceCounter(info.width)
    hill = HillAccumulator()
    channel_max = ChannelMax(info.width) if info.site in ("mlp_act", "mlp_out") else None
    for chunk in iter_chunks(reader, info.name, settings.skip_positions):
        for accumulator in (massive, counter, persistence, hill, channel_max):
            if accumulator is not None:
                accumulator.add(chunk)
    summary = massive_summary(massive, settings.sun_abs, settings.sun_ratio, decode)
    for token in summary["top_tokens"]:
        token["kind"] = token_kind(token["text"], token["position"])
    top1 = persistence.shares()
    record = {
        "layer": info.layer,
        "site": info.site,
        "width": info.width,
        "k": info.k,
        "n_tokens": persistence.n_tokens,
        "massive": summary,
        "persistent_channels": persistence.top_channels(settings.top_channels, decode),
        "top1_shares": {str(c): s for c, s in top1.items()},
        "dettmers_censored_share": counter.censored / max(counter.n_tokens, 1),
        "hill_tail": hill.summary(),
    }
    return record, counter, top1, channel_max


def _first_massive_layer(points: dict[str, dict[str, Any]], infos: list[PointInfo]) -> int | None:
    """The shallowest residual-stream point where Sun's criterion holds (embed is -1)."""
    layers = [
        info.layer
        for info in infos
        if info.site in RESIDUAL_SITES and points[info.name]["massive"]["criterion"]
    ]
    return min(layers) if layers else None


def token_kind(text: str | None, position: int) -> str:
    """ "first" (position 0), "delimiter" (whitespace/punctuation/special token) or "other"."""
    if position == 0:
        return "first"
    if text is None:
        return "other"
    stripped = text.strip()
    special = stripped.startswith("<") and stripped.endswith(">") and len(stripped) > 2
    if special or all(not ch.isalnum() for ch in stripped):
        return "delimiter"
    return "other"


def _decoder(run_dir: Path) -> Decode:
    """Decode with the tokenizer collect saved; ids only when there is none."""
    decoder = load_decoder(run_dir)
    if decoder is None:
        return lambda token: None
    return lambda token: decoder(token)


def write_outliers(run_dir: Path, report: OutlierReport) -> Path:
    """Write outliers.json atomically and the same JSON into the store's `outliers` group."""
    data = report.to_json()
    text = json.dumps(data, indent=2, allow_nan=False)
    path = outliers_path(run_dir)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    root = zarr.open_group(store_path(Path(run_dir)), mode="r+", zarr_format=3)
    group = root.require_group(OUTLIERS_GROUP)
    group.attrs.update(
        {
            "store_id": report.store_id,
            "n_tokens": report.n_tokens_store,
            "settings": report.settings,
            "analysis": text,
        }
    )
    return path


def read_outliers(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(outliers.json, None) when current; (None, why) when missing or made from another store."""
    path = outliers_path(run_dir)
    analysis = "an outlier analysis"
    return read_derived(run_dir, path, "points", analysis, "zipfstage fit", default_tokens=True)


def run_outlier_analysis(
    run_dir: Path, settings: OutlierSettings, progress: Progress | None = None
) -> Path | None:
    """What `fit` calls after fitting: analyse and write; None (nothing written) when the store
    has no top-k arrays (collected without --topk)."""
    reader = open_store(Path(run_dir))
    if not topk_points(reader) or reader.n_tokens == 0:
        return None
    return write_outliers(run_dir, analyse_outliers(run_dir, settings, progress))

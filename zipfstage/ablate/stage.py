"""The ablate stage: does the tail matter? Interventions on the channels the outlier analysis
names, with the run's own model, on text collect did not use; baseline and random controls in
the same run, on the same batches. Writes DIR/ablate.json (atomically, last) and DIR/plots/ablate.*.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zipfstage.ablate.evaluate import Watch, bucket_labels, evaluate
from zipfstage.ablate.loading import (
    Texts,
    batches,
    check_model_name,
    collect_settings,
    load_run_model,
    read_texts,
)
from zipfstage.ablate.massive import collected_every_layer, massive_from_store
from zipfstage.ablate.plan import (
    Choice,
    check_choice,
    choose_targets,
    fill_values,
    plan_interventions,
    value_needs,
)
from zipfstage.ablate.results import intervention_rows
from zipfstage.ablate.scan import scan_massive
from zipfstage.ablate.spec import Intervention, Target
from zipfstage.ablate.targets import Massive, ModelShape, outlier_channels, parse_target
from zipfstage.ablate.values import calibrate, stored_mean
from zipfstage.collect.models import LoadedModel
from zipfstage.collect.sites import site_hook
from zipfstage.config import AblateSettings
from zipfstage.errors import ZipfstageError
from zipfstage.outliers.analysis import outliers_path, read_outliers
from zipfstage.plotting import style
from zipfstage.plotting.ablate import ablate_figure
from zipfstage.stage import Progress, StageResult
from zipfstage.store.ablation import write_ablation
from zipfstage.store.layout import RunFolder
from zipfstage.store.lock import holds_reading_lock
from zipfstage.store.reader import StoreReader, open_store


@dataclass(frozen=True)
class Inputs:
    """Everything checked before the model loads."""

    reader: StoreReader
    shape: ModelShape
    choice: Choice
    outliers: dict[str, Any] | None


def check_inputs(settings: AblateSettings, run_dir: Path) -> Inputs:
    """Store, target, mode and outliers.json: bad input stops here, before the model loads."""
    reader = open_store(run_dir)
    reader.require_data()
    model = reader.info.get("model") or {}
    shape = ModelShape(int(model["n_layers"]), int(model["hidden_size"]))
    target = "auto" if settings.target == "auto" else parse_target(settings.target, shape)
    choice = Choice(target, settings.mode, settings.tokens, settings.max_super_weights)
    check_choice(choice)
    outliers, why = read_outliers(run_dir)
    if outliers is None and not isinstance(target, Target):
        raise ZipfstageError(
            why
            or f"no {outliers_path(run_dir).name} in {run_dir}: run `zipfstage fit --out "
            f"{run_dir}` first (it writes the outlier analysis ablate takes its targets from)"
        )
    check_model_name(collect_settings(reader, settings), reader)
    return Inputs(reader, shape, choice, outliers)


def locate_massive(
    inputs: Inputs, loaded: LoadedModel, scan_batches: list[Any]
) -> tuple[Massive | None, list[str]]:
    """The first massive layer: from the analysis when every block output was collected, else
    found on a few eval batches (and said so)."""
    if inputs.outliers is None:
        return None, []
    thresholds = _sun(inputs.outliers)
    if collected_every_layer(inputs.reader, inputs.shape.n_layers):
        return massive_from_store(inputs.reader, inputs.outliers), []
    massive = scan_massive(loaded.model, loaded.architecture, scan_batches, thresholds)
    where = (
        f"layer {massive.layer} (ch. {', '.join(map(str, massive.channels))})"
        if massive
        else "none"
    )
    note = (
        "the run did not collect every block output: the first massive layer was found on "
        f"{sum(b.size for b in scan_batches):,} eval tokens with the outlier analysis's "
        f"criterion: {where}"
    )
    return massive, [note]


def _sun(outliers: dict[str, Any]) -> tuple[float, float]:
    settings = outliers.get("settings") or {}
    return float(settings.get("sun_abs", 100.0)), float(settings.get("sun_ratio", 1000.0))


def prepare(
    settings: AblateSettings, inputs: Inputs, loaded: LoadedModel, texts: Texts
) -> tuple[list[Intervention], dict[str, str], Massive | None, list[str]]:
    """Targets, interventions with their values, and notes."""
    batch_size = settings.batch_size or int(inputs.reader.plan.batch_size)
    scan = batches(texts.eval[: max(1, settings.scan_tokens // texts.eval[0].size)], batch_size)
    massive, notes = locate_massive(inputs, loaded, scan)
    targets, more = choose_targets(inputs.choice, inputs.outliers, massive, inputs.shape)
    exclude = outlier_channels(inputs.outliers, massive)
    d_ff = _d_ff(loaded, targets)
    context = (massive, _sun(inputs.outliers or {})[0], settings.controls)
    planned = plan_interventions(
        targets, inputs.choice, context, exclude, (inputs.shape.hidden_size, d_ff)
    )
    needs = value_needs(planned)
    stats = calibrate(
        loaded.model, loaded.architecture, batches(texts.calibration, batch_size), needs
    )

    def stored(layer: int, channels: tuple[int, ...], rule: Any) -> Any:
        return stored_mean(inputs.reader, layer, channels, rule)

    filled, sources = fill_values(planned, stats, stored, settings.clamp_quantile)
    return filled, sources, massive, notes + more


def _d_ff(loaded: LoadedModel, targets: list[Target]) -> int:
    layers = [w.layer for t in targets for w in t.weights]
    return site_hook(loaded.architecture, layers[0], "mlp_act").width if layers else 0


@holds_reading_lock
def run(settings: AblateSettings, run_dir: Path, progress: Progress | None = None) -> StageResult:
    """Write DIR/ablate.json and DIR/plots/ablate.*; bad input writes nothing."""
    started = time.perf_counter()
    inputs = check_inputs(settings, Path(run_dir))
    loaded = load_run_model(collect_settings(inputs.reader, settings), inputs.reader)
    texts = read_texts(
        collect_settings(inputs.reader, settings), settings, loaded.tokenizer, inputs.reader
    )
    interventions, sources, massive, notes = prepare(settings, inputs, loaded, texts)
    batch_size = settings.batch_size or int(inputs.reader.plan.batch_size)
    watch = _watch(massive, inputs.shape.n_layers)
    total = len(interventions) * sum(s.size for s in texts.eval)
    done = [0]

    def advance(tokens: int) -> None:
        done[0] += tokens
        if progress:
            progress(done[0], total)

    evaluated = time.perf_counter()
    tallies = evaluate(
        loaded.model,
        loaded.architecture,
        batches(texts.eval, batch_size),
        interventions,
        watch,
        advance,
    )
    rate = total / max(time.perf_counter() - evaluated, 1e-9)
    rows = intervention_rows(interventions, tallies, bucket_labels(texts.eval[0].size), sources)
    data = _document(inputs, loaded, texts, massive, rows, notes, rate)
    data["seconds"] = time.perf_counter() - started
    outputs = _write(Path(run_dir), data, settings)
    return _result(rows, notes, outputs, data["seconds"], len(interventions))


def _watch(massive: Massive | None, n_layers: int) -> Watch:
    if massive is None:
        return Watch()
    return Watch(tuple(range(massive.layer, n_layers)), massive.channels)


def _document(
    inputs: Inputs,
    loaded: LoadedModel,
    texts: Texts,
    massive: Massive | None,
    rows: list[dict[str, Any]],
    notes: list[str],
    rate: float,
) -> dict[str, Any]:
    reader = inputs.reader
    return {
        "store_id": reader.attributes.generation,
        "n_tokens_store": reader.n_tokens,
        "model": loaded.describe(),
        "device": str(loaded.device),
        "eval": {
            "source": texts.source,
            "tokens": int(sum(s.size for s in texts.eval)),
            "sequences": len(texts.eval),
            "seq_len": int(texts.eval[0].size),
            "skipped_tokens": texts.skipped,
            "tokens_per_second": rate,
        },
        "calibration_tokens": int(sum(s.size for s in texts.calibration)),
        "massive": None
        if massive is None
        else {
            "layer": massive.layer,
            "channels": list(massive.channels),
            "value": massive.value,
            "source": massive.source,
        },
        "notes": notes,
        "interventions": rows,
    }


def _write(run_dir: Path, data: dict[str, Any], settings: AblateSettings) -> tuple[Path, ...]:
    """The figure under temporary names, then ablate.json, then the figure renamed into place:
    an interrupted run leaves the previous result whole."""
    folder = RunFolder.at(run_dir)
    figure = ablate_figure(data)
    stem = folder.ablate_plot
    staged = style.save_figure(
        figure, stem.with_name(f".{stem.name}.tmp"), style.extensions(settings.format), settings.dpi
    )
    try:
        path = write_ablation(run_dir, data)
        final = []
        for tmp in staged:
            target = stem.with_name(f"{stem.name}{tmp.suffix}")
            tmp.replace(target)
            final.append(target)
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    return (path, *final)


def _result(
    rows: list[dict[str, Any]], notes: list[str], outputs: tuple[Path, ...], seconds: float, n: int
) -> StageResult:
    main = [r for r in rows if r["control_of"] is None and r["kind"] != "baseline"]
    said = ", ".join(f"{r['name']} x{r['ratio']:.3g}" for r in main) or "nothing to intervene on"
    baseline = rows[0]["perplexity"]
    return StageResult(
        stage="ablate",
        summary=f"baseline perplexity {baseline:.4g}; {said} -> {outputs[0]}",
        outputs=outputs,
        notes=tuple(notes),
        seconds=seconds,
        counts={"interventions": n},
    )

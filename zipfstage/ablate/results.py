"""ablate.json's rows: each intervention's perplexity, ratio to the baseline, change of loss by
position bucket and the massive value at the watched layers; each target's controls summarised
(mean and spread of their ratios)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zipfstage.ablate.evaluate import Tally, Watch
from zipfstage.ablate.spec import Intervention


def intervention_rows(
    interventions: list[Intervention],
    tallies: list[Tally],
    labels: list[str],
    sources: dict[str, str],
) -> list[dict[str, Any]]:
    """One row per intervention (baseline first), controls summarised on their target's row."""
    baseline = tallies[0]
    rows = []
    for intervention, tally in zip(interventions, tallies, strict=True):
        row = intervention.to_json()
        row["loss"] = tally.loss
        row["perplexity"] = math.exp(tally.loss)
        row["ratio"] = math.exp(tally.loss - baseline.loss)
        row["delta_loss_by_position"] = {
            label: (None if mine is None or base is None else mine - base)
            for label, mine, base in zip(
                labels, tally.bucket_losses(), baseline.bucket_losses(), strict=True
            )
        }
        row["massive_after"] = _massive_after(tally)
        row["value_source"] = sources.get(intervention.name)
        rows.append(row)
    for row in rows:
        ratios = [r["ratio"] for r in rows if r["control_of"] == row["name"]]
        if ratios:
            row["controls"] = control_summary(ratios)
    return rows


def control_summary(ratios: list[float]) -> dict[str, Any]:
    """Mean, standard deviation (ddof 1) and range of the controls' perplexity ratios."""
    values = np.asarray(ratios, dtype=float)
    return {
        "n": len(values),
        "ratio_mean": float(values.mean()),
        "ratio_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "ratio_min": float(values.min()),
        "ratio_max": float(values.max()),
    }


def _massive_after(tally: Tally) -> dict[str, Any] | None:
    watch: Watch = tally.watch
    if not watch.layers:
        return None
    return {
        "layers": list(watch.layers),
        "channels": list(watch.channels),
        "max_abs": tally.massive_max.tolist(),
    }

"""The attention-sink paragraph and figures of the report's "Outlier channels" section.

Kept apart from `outliers_section` so that section only gains a hook: a paragraph from
outliers.json's `attention_sinks` (Gu et al.'s sink share, the first sink layer, and how it sits
against the first massive layer) and the two figures of `plotting.attention_sinks`.
"""

from __future__ import annotations

from typing import Any

from zipfstage.plotting import style
from zipfstage.plotting.attention_sinks import attention_sinks_figure, sink_share_figure
from zipfstage.report.figures import REPORT_DPI, ReportFigure

#: Gu et al.'s Sink_1^0.3 at T = 64 (ICLR 2025), for the comparison sentence
GU_RANGE = "92-99 % in LLaMA2-7B, LLaMA3-8B and Mistral-7B"


def sink_paragraph(outliers: dict[str, Any]) -> str | None:
    """What the attn points say about sinks; None when no attn site was collected."""
    sinks = outliers.get("attention_sinks")
    if not sinks or not sinks.get("layers"):
        return None
    pairs = sum(len(layer["mean_sink"]) for layer in sinks["layers"])
    seq_len = sinks["seq_len"]
    compare = (
        f"Gu et al. measured {GU_RANGE} at the same T"
        if sinks.get("comparable_to_gu")
        else f"Gu et al.'s {GU_RANGE} were measured at T = 64, so compare only a run at "
        "--seq-len 64"
    )
    first = sinks.get("first_sink_layer")
    text = (
        f"Attention sinks (Gu et al. 2025): a head is a sink head when its mean attention on "
        f"position 0, over all {seq_len} query positions of every sequence, exceeds "
        f"{sinks['eps']:g}. {100 * sinks['sink_share']:.1f} % of the {pairs} (layer, head) "
        f"pairs collected are sink heads ({compare}). "
        + (
            f"The first layer where at least {100 * sinks['layer_share']:.0f} % of the heads are "
            f"sink heads is layer {first}. "
            if first is not None
            else f"No layer has {100 * sinks['layer_share']:.0f} % sink heads. "
        )
    )
    return text + _relation(sinks)


def _relation(sinks: dict[str, Any]) -> str:
    if not sinks.get("every_resid_post"):
        return (
            "Collect resid_post at every layer (--points all) to set the first sink layer "
            "against the first massive layer."
        )
    massive, relation = sinks.get("first_massive_layer"), sinks.get("sink_layer_is")
    if massive is None or relation is None:
        return "No layer meets Sun et al.'s massive-activation criterion, so there is no pair."
    return (
        f"Sun et al.'s account (massive activations act as the bias that makes heads sink) "
        f"expects the first sink layer to be the first massive layer or the one after it; here "
        f"the first massive layer is {massive}, so the first sink layer is {relation}."
    )


def sink_figures(outliers: dict[str, Any]) -> list[ReportFigure]:
    """The attention_sinks heatmap and the sink share by layer, as PNGs (none without attn)."""
    figures = []
    for name, title, draw in (
        (
            "attention_sinks",
            "Mean attention on position 0 by layer and head",
            attention_sinks_figure,
        ),
        ("sink_share", "Sink share by layer", sink_share_figure),
    ):
        figure = draw(outliers)
        if figure is not None:
            png = style.png_bytes(figure, REPORT_DPI)
            figures.append(ReportFigure("outliers", name, title, png))
    return figures

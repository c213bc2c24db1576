"""ablate's figure: each intervention's perplexity ratio to the baseline on a log axis, one row
per intervention, its random controls beside it (every seed, and their mean)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zipfstage.plotting import style

CONTROL_COLOR = "#9aa5b1"
#: vertical offset of a row's controls under its intervention
CONTROL_OFFSET = 0.28


def main_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The interventions that are neither the baseline nor a control, in run order."""
    return [
        r
        for r in data.get("interventions") or []
        if r.get("control_of") is None and r.get("kind") != "baseline"
    ]


def ablate_figure(data: dict[str, Any]) -> Figure:
    """Perplexity ratio by intervention (log x), controls as grey dots below each row."""
    rows = main_rows(data)
    controls = {
        r["name"]: [c["ratio"] for c in data["interventions"] if c.get("control_of") == r["name"]]
        for r in rows
    }
    with style.styled():
        fig = style.new_figure((7.8, 1.9 + 0.55 * max(len(rows), 1)))
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.axvline(1.0, color=style.MUTED_COLOR, lw=1.0, ls="--", zorder=1)
        values = [1.0]
        for y, row in enumerate(rows):
            ax.plot(row["ratio"], y, "o", color=style.FIT_COLOR, ms=8, zorder=3)
            values.append(row["ratio"])
            seeds = controls[row["name"]]
            if seeds:
                ys = np.full(len(seeds), y + CONTROL_OFFSET)
                ax.plot(seeds, ys, "o", color=CONTROL_COLOR, ms=4.5, alpha=0.8, zorder=2)
                ax.plot(np.mean(seeds), y + CONTROL_OFFSET, "|", color="#3d4752", ms=14, mew=2)
                values.extend(seeds)
        _limits(ax, values)
        ax.set_yticks(range(len(rows)), [_label(r) for r in rows])
        ax.set_ylim(len(rows) - 0.4, -0.6)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("perplexity / baseline perplexity (log scale; dashed: no change)")
        baseline = (data.get("interventions") or [{}])[0].get("perplexity")
        title = "Interventions on the outlier channels"
        if isinstance(baseline, float):
            title += f" (baseline perplexity {baseline:.3g})"
        fig.suptitle(title, fontweight="bold")
        if not rows:
            ax.text(0.5, 0.5, "nothing to intervene on", transform=ax.transAxes, ha="center")
        handles = [
            Line2D([], [], ls="", marker="o", color=style.FIT_COLOR, label="intervention"),
            Line2D(
                [], [], ls="", marker="o", color=CONTROL_COLOR, label="random channels, per seed"
            ),
            Line2D([], [], ls="", marker="|", color="#3d4752", mew=2, ms=10, label="their mean"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return fig


def _label(row: dict[str, Any]) -> str:
    """Two short lines: what and how, then where (weights: which one)."""
    if row.get("weights"):
        name, _, weight = str(row["name"]).rpartition(" W")
        return f"{name}\nW{weight}"
    tokens = f", on {row['tokens']}" if row.get("tokens") else ""
    return f"{row['name']}\n{row.get('target', '')}{tokens}"


def _limits(ax: Any, values: list[float]) -> None:
    finite = [v for v in values if isinstance(v, float | int) and np.isfinite(v) and v > 0]
    low, high = min(finite), max(finite)
    ax.set_xlim(low / 1.6, high * 1.6)

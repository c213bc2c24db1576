"""Sink share against relative depth, one line per run: where attention sinks start in models of
different depths (Gu et al.'s share of heads whose mean attention on position 0 exceeds 0.3)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from zipfstage.compare.figures import DEPTH_LABEL, run_color, wrap
from zipfstage.compare.outliers import SinkShares
from zipfstage.plotting.style import MUTED_COLOR, new_figure, styled


def sink_by_depth_figure(runs: list[tuple[int, str, SinkShares]]) -> Figure:
    """The sink share by relative depth, per run; the 50 % line marks a sink layer."""
    with styled():
        fig = new_figure((7.6, 4.6 + 0.22 * len(runs)))
        ax = fig.add_subplot()
        for index, _, shares in runs:
            depth = [d for d, _ in shares]
            ax.plot(depth, [100 * s for _, s in shares], color=run_color(index), marker="o", ms=4)
        ax.axhline(50, color=MUTED_COLOR, lw=0.9, ls=":")
        ax.set_xlim(-0.04, 1.04)
        ax.set_ylim(-3, 103)
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("sink heads (%, mean attention on position 0 > 0.3)")
        ax.set_title("Sink share by relative depth", fontweight="bold")
        handles = [Line2D([], [], color=run_color(i), lw=2) for i, _, _ in runs]
        labels = [wrap(label) for _, label, _ in runs]
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8)
    return fig

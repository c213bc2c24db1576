"""One look for every figure: rc parameters, sizes, colours, and saving in the requested formats.

Figures are built with `matplotlib.figure.Figure` (never pyplot) and saved through their own canvas,
so drawing is headless whatever backend the caller chose, and this package never changes it: no
`matplotlib.use`, no global rc changes (the style applies inside `styled()` only).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, LogLocator, MaxNLocator

#: image formats a `--format` value stands for
FORMATS: dict[str, tuple[str, ...]] = {
    "png": ("png",),
    "pdf": ("pdf",),
    "svg": ("svg",),
    "both": ("png", "pdf"),
}

DATA_COLOR = "#1f3b73"
FIT_COLOR = "#d1495b"
ALT_COLOR = "#2a9d8f"
MUTED_COLOR = "#6c757d"
XMIN_COLOR = "#edae49"
SEQUENTIAL_CMAP = "viridis"
HEATMAP_CMAP = "cividis"
MISSING_CELL = "#d9d9d9"

SINGLE = (6.4, 4.6)
WIDE = (10.0, 4.2)

RC: dict[str, Any] = {
    "font.size": 10.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.7,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "path.simplify": True,
    "agg.path.chunksize": 20_000,
}

#: a note box inside the axes (fit summaries, "not fitted" reasons)
NOTE_BOX: dict[str, Any] = {
    "boxstyle": "round,pad=0.4",
    "facecolor": "white",
    "edgecolor": "#c8c8c8",
    "alpha": 0.92,
}


@contextmanager
def styled() -> Iterator[None]:
    """Apply the shared style while a figure is built and saved."""
    with rc_context(RC):  # type: ignore[arg-type]
        yield


def new_figure(size: tuple[float, float] = SINGLE, margins: Margins | None = None) -> Figure:
    """A figure with fixed margins (in inches) when given, else constrained layout.

    Fixed margins are for the figures drawn by the dozen (CCDFs, rank-frequency, diagnostics):
    constrained layout measures every tick label and costs about as much as drawing.
    """
    if margins is None:
        return Figure(figsize=size, layout="constrained")
    fig = Figure(figsize=size)
    width, height = size
    fig.subplots_adjust(
        left=margins.left / width,
        right=1 - margins.right / width,
        bottom=margins.bottom / height,
        top=1 - margins.top / height,
        wspace=margins.wspace,
        hspace=margins.hspace,
    )
    return fig


@dataclass(frozen=True)
class Margins:
    """Figure margins in inches; wspace and hspace as fractions of the mean axes size."""

    left: float = 0.85
    right: float = 0.2
    bottom: float = 0.62
    top: float = 0.42
    wspace: float = 0.3
    hspace: float = 0.5


def extensions(fmt: str) -> tuple[str, ...]:
    return FORMATS[fmt]


def save_figure(fig: Figure, stem: Path, exts: tuple[str, ...], dpi: int) -> list[Path]:
    """Write `stem.<ext>` for every extension; returns the paths written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with styled():
        for ext in exts:
            path = stem.with_name(f"{stem.name}.{ext}")
            fig.savefig(path, format=ext, dpi=dpi)
            written.append(path)
    return written


def png_bytes(fig: Figure, dpi: int) -> bytes:
    """The figure as PNG bytes, for embedding in the report."""
    buffer = io.BytesIO()
    with styled():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def log_axes(ax: Axes, x: bool = True, y: bool = True) -> None:
    """Log scales whose tick labels never crowd: decades labelled, minor ticks at 2 and 5 only
    (as readable, far cheaper to draw than 2..9), and on an axis spanning under a decade (gini,
    entropy) a few short labels such as 0.45 and 0.5 instead of nine 4.75x10^-1."""
    for use, axis, set_scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if use:
            set_scale("log")
            axis.set_minor_locator(MinorLogLocator())
            axis.set_minor_formatter(MinorLogFormatter())


def decades_inside(low: float, high: float) -> int:
    """How many powers of ten lie in [low, high] (the labelled major ticks of a log axis)."""
    if low <= 0 or high < low:
        return 0
    return int(np.floor(np.log10(high) + 1e-12) - np.ceil(np.log10(low) - 1e-12) + 1)


class MinorLogLocator(LogLocator):
    """Minor ticks at 2 and 5 per decade; where those and the decades give fewer than three
    ticks, at most `nbins` evenly spaced round values (matplotlib would fall back to ~9)."""

    def __init__(self, nbins: int = 4) -> None:
        super().__init__(subs=(2.0, 5.0))
        self.nbins = nbins

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        low, high = sorted((vmin, vmax))
        if low <= 0:
            return super().tick_values(vmin, vmax)
        powers = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
        candidates = np.outer((1.0, 2.0, 5.0), 10.0**powers).ravel()
        if np.count_nonzero((candidates >= low) & (candidates <= high)) >= 3:
            return super().tick_values(vmin, vmax)
        steps = [1, 2, 2.5, 5, 10]
        linear = np.asarray(MaxNLocator(nbins=self.nbins, steps=steps).tick_values(low, high))
        return [float(t) for t in linear if t > 0]


class MinorLogFormatter(Formatter):
    """Short minor-tick labels, shown only while fewer than two decades are labelled."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        low, high = sorted(self.axis.get_view_interval()) if self.axis else (0.0, 0.0)
        if decades_inside(low, high) >= 2:
            return ""
        return f"{x:.3g}"


def plot_data(ax: Axes, x: np.ndarray, y: np.ndarray, n: int) -> None:
    """The data as small translucent dots, in one style across figures (rasterised when dense)."""
    ax.plot(
        x,
        y,
        color=DATA_COLOR,
        lw=0,
        marker=".",
        ms=2.2,
        alpha=0.55,
        label=f"data (N = {n:,})",
        rasterized=len(x) > 3000,
    )

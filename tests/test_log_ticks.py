"""Log-axis tick labels stay readable: never overlapping, whatever range the data spans."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg

from zipfstage.plotting import style


def _labels(axis: Axis, renderer: object) -> list[tuple[str, object]]:
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return [
        (tick.label1.get_text(), tick.label1.get_window_extent(renderer))
        for tick in ticks
        if tick.label1.get_visible()
        and tick.label1.get_text()
        and axis.axes.get_xlim()[0] <= tick.get_loc() <= axis.axes.get_xlim()[1]
    ]


@pytest.mark.parametrize(
    "low, high",
    [(0.45, 0.68), (0.3, 0.95), (0.9, 5.5), (0.2, 30.0), (1e-5, 1.0), (3.0, 4.0), (250.0, 900.0)],
)
def test_log_x_tick_labels_do_not_overlap_on_a_narrow_axes(low: float, high: float) -> None:
    with style.styled():
        fig = style.new_figure((3.2, 2.6))
        ax = fig.add_subplot()
        ax.plot(np.geomspace(low, high, 50), np.linspace(1, 2, 50))
        style.log_axes(ax, y=False)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        labels = _labels(ax.xaxis, canvas.get_renderer())
    assert len(labels) >= 2, labels  # the range is readable from the labels
    boxes = sorted((box for _, box in labels), key=lambda b: b.x0)
    for left, right in pairwise(boxes):
        assert left.x1 < right.x0, [text for text, _ in labels]


def test_narrow_ranges_get_short_labels_and_wide_ones_only_decades() -> None:
    assert style.decades_inside(0.45, 0.68) == 0 and style.decades_inside(0.1, 100.0) == 4
    locator = style.MinorLogLocator()
    ticks = [t for t in locator.tick_values(0.45, 0.68) if 0.45 <= t <= 0.68]
    assert 2 <= len(ticks) <= 5  # not matplotlib's nine linear fallback ticks
    assert list(locator.tick_values(0.01, 100.0))[:4] == pytest.approx([0.002, 0.005, 0.02, 0.05])

"""Names of the report's figures: file names next to report.md, anchors in report.html.

One place, so the summary links to a figure by the same name the figure is saved under.
"""

from __future__ import annotations

ALPHA_DASHBOARD = "alpha_dashboard"
SLOPE_DASHBOARD = "slope_dashboard"
CHANNEL_HEATMAP = "channel_heatmap"


def ccdf_name(point: str, metric: str) -> str:
    return f"ccdf__{point}__{metric}"


def depth_name(metric: str) -> str:
    return f"multi_layer__{metric}"

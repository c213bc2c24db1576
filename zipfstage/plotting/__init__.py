"""Figures of a run: CCDFs, rank-frequency plots, depth overlays, dashboards and diagnostics.

The stage entry is `zipfstage.plotting.stage.run`; each `*_figure` function returns a
`matplotlib.figure.Figure` built without pyplot, usable from a notebook on any backend.
"""

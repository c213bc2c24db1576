"""Figures of a run: CCDFs, rank-frequency plots, depth overlays, dashboards and diagnostics."""

from zipfstage.plotting.run import PlotResult, plot_run, plots_dir

__all__ = ["PlotResult", "plot_run", "plots_dir"]

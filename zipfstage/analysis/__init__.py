"""A run folder as data for notebooks: the fit table, metric arrays, outliers and tokens.

`zipfstage.open_run(path)` is the entry point; `export_fits` writes the fit table as CSV or
Parquet for tools outside Python. Nothing here loads torch, numba or matplotlib.
"""

"""The one place compare imports the other stages' reading API from.

Fit records, the store reader, the stale-fit check, plot style and thinning, and the report's
self-contained HTML pieces are all reused, never copied; when those modules move, only the imports
below change.
"""

from __future__ import annotations

from zipfstage.plotting.annotate import note
from zipfstage.plotting.data import SampleCache, metric_label
from zipfstage.plotting.records import Fit, FitTable, lookup, parse_records
from zipfstage.plotting.style import (
    FORMATS,
    Margins,
    extensions,
    fmt_fixed,
    fmt_number,
    log_axes,
    new_figure,
    png_bytes,
    save_figure,
    styled,
)
from zipfstage.plotting.thinning import SortedSample
from zipfstage.report.figures import ReportFigure
from zipfstage.report.html import CSS, SORT_JS
from zipfstage.report.html import _figures as figures_html
from zipfstage.report.verdict import P_PLAUSIBLE, Verdict, clauset_verdict
from zipfstage.store.fits import read_fit_records, require_current_fits
from zipfstage.store.layout import CHANNEL_WISE, store_path
from zipfstage.store.reader import StoreReader, open_store

__all__ = [
    "CHANNEL_WISE",
    "CSS",
    "FORMATS",
    "P_PLAUSIBLE",
    "SORT_JS",
    "Fit",
    "FitTable",
    "Margins",
    "ReportFigure",
    "SampleCache",
    "SortedSample",
    "StoreReader",
    "Verdict",
    "clauset_verdict",
    "extensions",
    "figures_html",
    "fmt_fixed",
    "fmt_number",
    "log_axes",
    "lookup",
    "metric_label",
    "new_figure",
    "note",
    "open_store",
    "parse_records",
    "png_bytes",
    "read_fit_records",
    "require_current_fits",
    "save_figure",
    "store_path",
    "styled",
]

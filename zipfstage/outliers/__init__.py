"""Which hidden channels make the heavy tail: massive activations (Sun et al. 2024), outlier
features (Dettmers et al. 2022), persistent top-1 channels, super-weight candidates (Yu et al.
2024) and per-token channel tails, all from the top-k channel arrays `collect` stores."""

from zipfstage.outliers.analysis import (
    OutlierReport,
    analyse_outliers,
    outliers_path,
    read_outliers,
    run_outlier_analysis,
    write_outliers,
)
from zipfstage.records import TOPK_ARRAYS
from zipfstage.store.layout import OUTLIERS_JSON

__all__ = [
    "OUTLIERS_JSON",
    "TOPK_ARRAYS",
    "OutlierReport",
    "analyse_outliers",
    "outliers_path",
    "read_outliers",
    "run_outlier_analysis",
    "write_outliers",
]

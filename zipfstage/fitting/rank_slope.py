"""OLS slope of the rank-frequency (Zipf) plot on log-log axes.

Descriptive only: least squares on a log-log plot is a biased estimator of a power-law exponent and
R^2 near 1 is no evidence of a power law (Clauset et al. 2009, section 3); the MLE alpha and the
bootstrap p-value are the inference. Kept because readers expect the Zipf plot's slope.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def rank_slope(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(slope, intercept, R^2) of log10(value) against log10(rank), rank 1 = largest.

    All None with fewer than 3 values or all values equal.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if x.size < 3 or x[0] == x[-1]:
        return None, None, None
    ranks = np.arange(1, x.size + 1, dtype=np.float64)
    fit = stats.linregress(np.log10(ranks), np.log10(x))
    return float(fit.slope), float(fit.intercept), float(fit.rvalue**2)

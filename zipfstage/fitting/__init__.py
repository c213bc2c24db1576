"""Power-law fitting: exact, fast Clauset-Shalizi-Newman fits usable without a store.

>>> from zipfstage.fitting import fit_power_law
>>> result = fit_power_law(values, bootstrap=200)        # doctest: +SKIP
>>> result.alpha, result.xmin, result.p_value             # doctest: +SKIP

The result is a `zipfstage.records.FitRecord`; `PowerLawFit` is its name here, kept for notebooks.
"""

from zipfstage.fitting.api import fit_power_law
from zipfstage.fitting.compare import compare_alternatives
from zipfstage.fitting.discrete import CLAUSET_ALPHA_GRID
from zipfstage.records import ALTERNATIVES, Comparison, ScanCurves
from zipfstage.records import FitRecord as PowerLawFit

__all__ = [
    "ALTERNATIVES",
    "CLAUSET_ALPHA_GRID",
    "Comparison",
    "PowerLawFit",
    "ScanCurves",
    "compare_alternatives",
    "fit_power_law",
]

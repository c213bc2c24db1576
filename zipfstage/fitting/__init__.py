"""Power-law fitting: exact, fast Clauset-Shalizi-Newman fits usable without a store.

>>> from zipfstage.fitting import fit_power_law
>>> result = fit_power_law(values, bootstrap=200)        # doctest: +SKIP
>>> result.alpha, result.xmin, result.p_value             # doctest: +SKIP
"""

from zipfstage.fitting.api import fit_power_law
from zipfstage.fitting.compare import ALTERNATIVES, compare_alternatives
from zipfstage.fitting.result import Comparison, PowerLawFit, ScanCurves

__all__ = [
    "ALTERNATIVES",
    "Comparison",
    "PowerLawFit",
    "ScanCurves",
    "compare_alternatives",
    "fit_power_law",
]

"""The fit result: frozen, plain data, and the record/curves split the store and `plot` rely on."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUS_OK = "ok"
STATUS_TOO_FEW = "too_few"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class Comparison:
    """Log-likelihood ratio R of power law vs an alternative (R > 0 favours the power law)."""

    R: float
    p: float
    params: dict[str, float]
    nested: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"R": self.R, "p": self.p, "params": dict(self.params), "nested": self.nested}


@dataclass(frozen=True)
class ScanCurves:
    """KS distance and alpha for every candidate xmin; `exact` is False where the branch-and-bound
    scan stopped early (there `ks` is a lower bound that already exceeded the winner's distance)."""

    xmin: np.ndarray
    ks: np.ndarray
    alpha: np.ndarray
    exact: np.ndarray


@dataclass(frozen=True)
class PowerLawFit:
    """One power-law fit: `to_record()` is the JSON record, `curves()` the arrays beside it."""

    alpha: float | None
    xmin: float | None
    ks_distance: float | None
    n_tail: int
    n: int
    sigma: float | None
    status: str = STATUS_OK
    reason: str | None = None
    xmax: float | None = None
    n_dropped: int = 0
    p_value: float | None = None
    alpha_ci: tuple[float, float] | None = None
    xmin_ci: tuple[float, float] | None = None
    slope: float | None = None
    intercept: float | None = None
    r2: float | None = None
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    discrete: bool = False
    scan: ScanCurves | None = field(default=None, repr=False, compare=False)
    bootstrap_alpha: np.ndarray | None = field(default=None, repr=False, compare=False)
    bootstrap_xmin: np.ndarray | None = field(default=None, repr=False, compare=False)
    ks_sup: float | None = None  # two-sided KS supremum at xmin (ks_distance is powerlaw's)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def replace(self, **changes: Any) -> PowerLawFit:
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """The JSON record (see the contract in `zipfstage.store.fits`)."""
        return {
            "alpha": self.alpha,
            "xmin": self.xmin,
            "xmax": self.xmax,
            "ks_distance": self.ks_distance,
            "ks_sup": self.ks_sup,
            "n_tail": self.n_tail,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "sigma": self.sigma,
            "alpha_ci": list(self.alpha_ci) if self.alpha_ci is not None else None,
            "xmin_ci": list(self.xmin_ci) if self.xmin_ci is not None else None,
            "p_value": self.p_value,
            "slope": self.slope,
            "intercept": self.intercept,
            "r2": self.r2,
            "comparisons": {name: c.to_dict() for name, c in self.comparisons.items()},
            "status": self.status,
            "reason": self.reason,
            "flags": list(self.flags),
            "discrete": self.discrete,
        }

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_record()), allow_nan=False)

    def curves(self) -> dict[str, np.ndarray]:
        """Diagnostic arrays: the scan (all candidates) and, with a bootstrap, its draws."""
        out: dict[str, np.ndarray] = {}
        if self.scan is not None:
            out["scan_xmin"] = self.scan.xmin
            out["scan_ks"] = self.scan.ks
            out["scan_alpha"] = self.scan.alpha
            out["scan_exact"] = self.scan.exact.astype(np.float64)
        if self.bootstrap_alpha is not None:
            out["bootstrap_alpha"] = self.bootstrap_alpha
        if self.bootstrap_xmin is not None:
            out["bootstrap_xmin"] = self.bootstrap_xmin
        return out


def unfit(status: str, reason: str, n: int, n_dropped: int, **extra: Any) -> PowerLawFit:
    """A result for data that cannot be fitted: every estimate None, the reason said."""
    return PowerLawFit(
        alpha=None,
        xmin=None,
        ks_distance=None,
        n_tail=0,
        n=n,
        sigma=None,
        status=status,
        reason=reason,
        n_dropped=n_dropped,
        **extra,
    )


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

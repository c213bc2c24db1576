"""Tail CCDFs of the fitted power law and its alternatives, in the `powerlaw` package's parameters.

Every model is a distribution on [xmin, inf) (its CCDF is 1 at xmin), drawn scaled by the tail's
share of the data so it sits on the empirical CCDF of all the data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

from zipfstage.records import Comparison, FitRecord


def power_law_ccdf(x: np.ndarray, alpha: float, xmin: float) -> np.ndarray:
    """P(X >= x | X >= xmin) = (x / xmin)^(1 - alpha)."""
    return np.power(np.asarray(x, dtype=np.float64) / xmin, 1.0 - alpha)


def alternative_ccdf(name: str, params: dict[str, float], x: np.ndarray, xmin: float) -> np.ndarray:
    """P(X >= x | X >= xmin) for one alternative; raises KeyError/ValueError on bad params."""
    x = np.asarray(x, dtype=np.float64)
    if name == "truncated_power_law":
        return _truncated_power_law_ccdf(x, params["alpha"], params["lambda"], xmin)
    dist = _scipy_distribution(name, params)
    tail = dist.logsf(xmin)
    return np.exp(dist.logsf(x) - tail)


def _scipy_distribution(name: str, params: dict[str, float]) -> stats.rv_continuous:
    if name == "lognormal":
        return stats.lognorm(s=params["sigma"], scale=math.exp(params["mu"]))
    if name == "exponential":
        return stats.expon(scale=1.0 / params["lambda"])
    if name == "stretched_exponential":
        # powerlaw: ccdf = exp((lambda xmin)^beta - (lambda x)^beta), a Weibull tail
        return stats.weibull_min(c=params["beta"], scale=1.0 / params["lambda"])
    raise KeyError(name)


def _truncated_power_law_ccdf(x: np.ndarray, alpha: float, lam: float, xmin: float) -> np.ndarray:
    """pdf ~ x^-alpha e^(-lambda x). scipy's incomplete gamma needs a positive shape (1 - alpha is
    not), so integrate: S(x) = x^(1-alpha) e^(-lambda x) I(x), I(x) = int_1^inf u^-alpha
    e^(-lambda x (u - 1)) du, a well-scaled integral in (0, 1/(alpha - 1)]."""
    if lam <= 0:
        return power_law_ccdf(x, alpha, xmin)

    def log_survival(point: float) -> float:
        rate = lam * point
        inner, _ = integrate.quad(
            lambda u: u**-alpha * math.exp(-rate * (u - 1.0)),
            1.0,
            math.inf,
            epsabs=0.0,
            epsrel=1e-7,
            limit=200,
        )
        return (1.0 - alpha) * math.log(point) - rate + math.log(max(inner, 1e-300))

    reference = log_survival(xmin)
    return np.exp([log_survival(float(v)) - reference for v in x])


def best_alternative(fit: FitRecord) -> Comparison | None:
    """The alternative the likelihood ratios favour most (smallest R), with usable parameters."""
    usable = [c for c in fit.comparisons.values() if c.R is not None and c.params]
    return min(usable, key=lambda c: c.R if c.R is not None else math.inf, default=None)


def tail_grid(xmin: float, xmax: float, points: int = 200) -> np.ndarray:
    """Log-spaced x from xmin to the largest value, for smooth model curves."""
    upper = max(xmax, xmin * 1.0001)
    return np.geomspace(xmin, upper, points)

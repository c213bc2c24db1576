"""Projected Newton iteration for the smooth convex two-parameter likelihoods of `compare`.

Each objective there is a mean negative log-likelihood on a few sufficient statistics, so one step
costs microseconds in plain Python and a general-purpose optimiser's bookkeeping would dominate.
The Hessian comes from forward differences of the analytic gradient; the second coordinate is
kept >= 0 (the edge where the alternative becomes the power law) and, where the gradient pushes
outward there, only the first coordinate moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Objective = Callable[[float, float], float]
Gradient = Callable[[float, float], tuple[float, float]]


def minimise(
    f: Objective, grad: Gradient, u: float, v: float, max_iter: int = 100
) -> tuple[float, float]:
    """argmin of f(u, v) over v >= 0 from (u, v), with backtracking on f."""
    value = f(u, v)
    for _ in range(max_iter):
        gu, gv = grad(u, v)
        if not (math.isfinite(gu) and math.isfinite(gv)):
            break
        du, dv = _direction(grad, u, v, gu, gv)
        step = 1.0
        while step > 1e-12:
            nu, nv = u + step * du, max(v + step * dv, 0.0)
            new = f(nu, nv)
            if new <= value:
                break
            step *= 0.5
        else:
            break
        done = abs(nu - u) <= 1e-13 * (1.0 + abs(u)) and abs(nv - v) <= 1e-13 * (1.0 + v)
        u, v, value = nu, nv, new
        if done:
            break
    return u, v


def _direction(grad: Gradient, u: float, v: float, gu: float, gv: float) -> tuple[float, float]:
    hu = 1e-6 * (1.0 + abs(u))
    hv = 1e-6 * (1.0 + v)
    gu1, gv1 = grad(u + hu, v)
    gu2, gv2 = grad(u, v + hv)
    huu, hvv = (gu1 - gu) / hu, (gv2 - gv) / hv
    huv = 0.5 * ((gv1 - gv) / hu + (gu2 - gu) / hv)
    if v <= 0.0 and gv >= 0.0:
        return (-gu / huu if huu > 0 else -gu), 0.0
    det = huu * hvv - huv * huv
    if not (huu > 0.0 and det > 0.0 and math.isfinite(det)):
        return -gu, -gv
    return -(hvv * gu - huv * gv) / det, -(huu * gv - huv * gu) / det

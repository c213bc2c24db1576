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
from dataclasses import dataclass

Objective = Callable[[float, float], float]
Gradient = Callable[[float, float], tuple[float, float]]

#: a projected gradient component below this (objectives are mean log-likelihoods in well-scaled
#: coordinates, and gradients come to ~1e-7 from central differences) is zero: converged
GTOL = 1e-5
#: a Newton decrement below this (relative to f) is a converged minimum
DECREMENT_TOL = 1e-12
#: a second coordinate below this, no better than the edge v = 0, is the edge
EDGE_SNAP = 1e-9


@dataclass(frozen=True)
class Minimum:
    """Where the iteration stopped and whether that is a minimum (`converged`), with why not."""

    u: float
    v: float
    value: float
    converged: bool
    reason: str  # "gradient" (converged) or why the iteration stopped short
    iterations: int


def minimise(f: Objective, grad: Gradient, u: float, v: float, max_iter: int = 100) -> Minimum:
    """argmin of f(u, v) over v >= 0 from (u, v), with backtracking on f.

    The iteration runs until its steps stall (or no step decreases f, or max_iter); then the
    projected gradient decides: converged where it is below GTOL (v > 0: both components; on the
    edge v = 0 the v component may only push outward). Otherwise `reason` says how it stopped,
    so that no caller uses an unchecked point."""
    value = f(u, v)
    if not math.isfinite(value):
        return Minimum(u, v, value, False, "objective not finite at the start", 0)
    stop = "max_iter reached"
    it = 0
    for it in range(1, max_iter + 1):
        gu, gv = grad(u, v)
        if v <= 0.0 and gv == -math.inf and math.isfinite(gu):
            # the edge is a cusp the optimum is never on (the truncated power law at lam = 0
            # with alpha <= 2): step inward to where the gradient is finite
            u, v, value = _off_the_edge(f, u, value)
            continue
        if not (math.isfinite(gu) and math.isfinite(gv)):
            return Minimum(u, v, value, False, "gradient not finite", it)
        du, dv, edge_du = _direction(grad, u, v, gu, gv)
        moved = _line_search(f, u, v, du, dv, value)
        if v <= 0.0 and dv != 0.0:
            # leaving the edge may not pay (its curvature can be singular): moving along it may
            along = _line_search(f, u, v, edge_du, 0.0, value)
            if moved is None or (along is not None and along[2] < moved[2]):
                moved = along
        if moved is None:
            stop = "line search found no descent"
            break
        nu, nv, new = moved
        if 0.0 < nv < EDGE_SNAP and f(nu, 0.0) <= new:
            # within rounding of the edge: stand on it, where the projected step can reach
            # the edge's own optimum (beside it the curvature in v can be singular)
            nv, new = 0.0, f(nu, 0.0)
        done = abs(nu - u) <= 1e-13 * (1.0 + abs(u)) and abs(nv - v) <= 1e-13 * (1.0 + v)
        u, v, value = nu, nv, new
        if done:
            stop = "steps stalled"
            break
    gu, gv = grad(u, v)
    if math.isfinite(gu) and (
        (
            math.isfinite(gv)
            and (_stationary(v, gu, gv) or _decrement_small(grad, u, v, gu, gv, value))
        )
        or (v < EDGE_SNAP and abs(gu) <= GTOL and _edge_is_best(f, u, value))
    ):
        return Minimum(u, v, value, True, "converged", it)
    return Minimum(u, v, value, False, f"{stop} with gradient ({gu:.3g}, {gv:.3g})", it)


def _line_search(
    f: Objective, u: float, v: float, du: float, dv: float, value: float
) -> tuple[float, float, float] | None:
    """Backtrack from the full step until f does not rise; None if no step down to 1e-12 does."""
    step = 1.0
    while step > 1e-12:
        nu, nv = u + step * du, max(v + step * dv, 0.0)
        new = f(nu, nv)
        if new <= value:
            return nu, nv, new
        step *= 0.5
    return None


def _off_the_edge(f: Objective, u: float, value: float) -> tuple[float, float, float]:
    """The best of v = 10^-k (k = 1..15) beside the edge, which an infinite slope says beats it."""
    best = min((f(u, 10.0**-k), 10.0**-k) for k in range(1, 16))
    return (u, best[1], best[0]) if best[0] <= value else (u, 10.0**-15, f(u, 10.0**-15))


def _edge_is_best(f: Objective, u: float, value: float) -> bool:
    """On the edge v = 0 where the slope points inward but the curvature there is singular (the
    truncated power law near lam = 0 for alpha < 3 gains ~lam^(alpha-1)): no point beside the
    edge is better beyond rounding, so the edge is the optimum to double precision."""
    tol = 4.0 * 2.0**-52 * (1.0 + abs(value))
    return all(f(u, 10.0**-k) >= value - tol for k in range(1, 16))


def _decrement_small(
    grad: Gradient, u: float, v: float, gu: float, gv: float, value: float
) -> bool:
    """The Newton decrement g' H^-1 g (twice the decrease a full Newton step still promises) is
    below rounding of f: converged whatever the coordinates' scales, where a fixed gradient
    tolerance is too strict for a stretched coordinate (a truncated power law with lambda ~ 100)."""
    du, dv, _ = _direction(grad, u, v, gu, gv)
    decrement = -(gu * du + gv * dv)
    return math.isfinite(decrement) and decrement <= DECREMENT_TOL * (1.0 + abs(value))


def _stationary(v: float, gu: float, gv: float) -> bool:
    """The projected gradient vanishes: on the edge (v within EDGE_SNAP of 0) an outward push
    (gv > 0) is allowed."""
    if abs(gu) > GTOL:
        return False
    return gv >= -GTOL if v < EDGE_SNAP else abs(gv) <= GTOL


def _direction(
    grad: Gradient, u: float, v: float, gu: float, gv: float
) -> tuple[float, float, float]:
    """The projected Newton step (du, dv), and the step in u alone (for moves along the edge)."""
    hu = 1e-6 * (1.0 + abs(u))
    hv = 1e-6 * (1.0 + v)
    gu1, gv1 = grad(u + hu, v)
    gu2, gv2 = grad(u, v + hv)
    huu, hvv = (gu1 - gu) / hu, (gv2 - gv) / hv
    huv = 0.5 * ((gv1 - gv) / hu + (gu2 - gu) / hv)
    edge_du = -gu / huu if huu > 0 else -gu
    if v <= 0.0 and gv >= 0.0:
        return edge_du, 0.0, edge_du
    det = huu * hvv - huv * huv
    if not (huu > 0.0 and det > 0.0 and math.isfinite(det)):
        return -gu, -gv, edge_du
    du, dv = -(hvv * gu - huv * gv) / det, -(huu * gv - huv * gu) / det
    # projected Newton: a step out of the feasible set from the edge keeps v on the edge
    if v <= 0.0 and dv <= 0.0:
        return edge_du, 0.0, edge_du
    return du, dv, edge_du

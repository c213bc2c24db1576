"""Which per-fit figures a reader looks at: the fits the report's summary names, and a bounded
choice of points per metric, so `plot` and `report` scale with the run instead of drawing
(points x metrics) CCDFs nobody opens.

Plain records in, names out (records only): `report.summary` names its heaviest tails from here,
so the CCDFs `plot` draws by default are the ones the summary links to.
"""

from __future__ import annotations

from zipfstage.records import FitRecord, FitTable, lookup

#: Clauset, Shalizi & Newman (2009): the power law is ruled out when the bootstrap p < 0.1
P_PLAUSIBLE = 0.1
#: how many of the heaviest plausible tails the summary names
HEAVIEST = 3
#: CCDFs per metric `plot --figures summary` draws besides the named ones
PER_METRIC = 6


def plausible(fit: FitRecord) -> bool:
    """Clauset's rule: a fit whose bootstrap p-value is at least 0.1."""
    return fit.ok and fit.p_value is not None and fit.p_value >= P_PLAUSIBLE


def heaviest_tails(fits: list[FitRecord], n: int = HEAVIEST) -> list[FitRecord]:
    """The plausible fits with the smallest alpha (the heaviest tails), heaviest first."""
    return sorted(filter(plausible, fits), key=lambda f: (f.alpha or 0.0, f.point, f.metric))[:n]


def named_fits(fits: list[FitRecord]) -> list[FitRecord]:
    """The fits the summary names: the heaviest plausible tails, else the smallest alpha."""
    heaviest = heaviest_tails(fits)
    if heaviest:
        return heaviest
    fitted = sorted((f for f in fits if f.ok), key=lambda f: f.alpha or 0.0)
    return fitted[:1]


def selected_points(
    points: list[str], metric: str, table: FitTable, per_metric: int = PER_METRIC
) -> list[str]:
    """At most `per_metric` points of one metric, in depth order: the heaviest and the lightest
    fitted tail (the dashboard's extremes), then depths spread from shallow to deep (first, last,
    middle, quarters, ...)."""
    fitted = [p for p in points if lookup(table, p, metric).ok]
    by_alpha = sorted(fitted, key=lambda p: lookup(table, p, metric).alpha or 0.0)
    wanted = by_alpha[:1] + by_alpha[-1:] + [points[i] for i in spread_indices(len(points))]
    chosen = list(dict.fromkeys(wanted))[:per_metric]
    return [p for p in points if p in chosen]


def spread_indices(n: int) -> list[int]:
    """0..n-1 ordered so every prefix is spread evenly: ends, middle, quarters, eighths, ..."""
    order = [0, n - 1] if n > 1 else list(range(n))
    parts = 2
    while len(set(order)) < n:
        order += [round(k * (n - 1) / parts) for k in range(1, parts, 2)]
        parts *= 2
    return list(dict.fromkeys(order))

"""Numbers as figures and reports show them: one rule for both, and no plotting import."""

from __future__ import annotations

DASH = "\u2014"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """Compact, readable numbers for annotations: 3 significant digits, '—' when missing."""
    if value is None:
        return DASH
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def fmt_fixed(value: float | None, digits: int = 2) -> str:
    """Fixed decimals for exponents and slopes (2.00, not 2), '—' when missing."""
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_alpha(alpha: float | None, binned: float | None = None) -> str:
    """alpha, with the binned-likelihood alpha beside it when the grid's rounding moves it."""
    shown = fmt_fixed(alpha)
    return shown if alpha is None or binned is None else f"{shown} (binned {fmt_fixed(binned)})"


def fmt_p_value(value: float | None, n_failed: int | None, digits: int = 3) -> str:
    """A bootstrap p-value, saying how many replicates failed (they are not in its denominator)."""
    shown = fmt_number(value, digits)
    return f"{shown} ({n_failed} failed)" if value is not None and n_failed else shown


#: marks an interval that lies wholly to one side of its estimate (figures, tables, legends)
EXCLUDES_MARK = "\u2020"


def fmt_interval(
    interval: tuple[float, float] | None, estimate: float | None, sep: str = "\u2013"
) -> str:
    """The interval as low-high (en dash by default), marked with EXCLUDES_MARK when the estimate
    lies outside it (a bootstrap percentile interval of a skewed re-fit distribution can); DASH
    when there is none."""
    if interval is None:
        return DASH
    low, high = sorted(interval)
    text = f"{fmt_fixed(low)}{sep}{fmt_fixed(high)}"
    outside = estimate is not None and not low <= estimate <= high
    return f"{text} {EXCLUDES_MARK}" if outside else text

"""Text that goes on figures: the fit summary box and the "not fitted" note."""

from __future__ import annotations

from matplotlib.axes import Axes

from zipfstage.formatting import fmt_fixed, fmt_interval, fmt_number, fmt_p_value
from zipfstage.plotting.style import NOTE_BOX
from zipfstage.records import ALTERNATIVE_LABELS, Comparison, FitRecord


def fit_summary(fit: FitRecord, alternative: Comparison | None = None) -> str:
    """alpha (CI), xmin, n_tail, KS distance, p-value where computed, best alternative."""
    alpha = f"\u03b1 = {fmt_fixed(fit.alpha)}"
    if fit.alpha_ci is not None:
        alpha += f"\n   95% CI {fmt_interval(fit.alpha_ci, fit.alpha)}"
    share = f"\n   ({100 * fit.tail_share:.3g}% of the fitted sample)" if fit.n else ""
    lines = [
        alpha,
        f"xmin = {fmt_number(fit.xmin)}",
        f"n_tail = {fit.n_tail:,}{share}" if fit.n_tail is not None else "n_tail = —",
        f"KS D = {fmt_number(fit.ks_distance)}",
        f"p = {fmt_p_value(fit.p_value, fit.n_failed, 2)} (bootstrap)"
        if fit.p_value is not None
        else "p: not computed\n   (run fit --bootstrap N)",
    ]
    if alternative is not None:
        label = ALTERNATIVE_LABELS.get(alternative.name, alternative.name)
        lines += [
            "best alternative:",
            f"   {label}",
            f"   R = {fmt_number(alternative.R)}, p = {fmt_number(alternative.p, 2)}",
        ]
    return "\n".join(lines)


def draw_interval(ax: Axes, x: float, interval: tuple[float, float], color: str) -> None:
    """A vertical interval from its low to its high end with caps, wherever the estimate lies: a
    bootstrap percentile interval can lie wholly to one side of it, which errorbar refuses."""
    low, high = sorted(interval)
    ax.plot([x, x], [low, high], color=color, lw=1, marker="_", ms=5, mew=1, solid_capstyle="butt")


def note(ax: Axes, text: str, loc: str = "lower left") -> None:
    """A boxed note inside the axes at one of the four corners."""
    vertical, horizontal = loc.split()
    x = 0.03 if horizontal == "left" else 0.97
    y = 0.04 if vertical == "lower" else 0.96
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha=horizontal,
        va="bottom" if vertical == "lower" else "top",
        fontsize=9,
        bbox=NOTE_BOX,
        zorder=10,
        linespacing=1.35,
    )


def not_fitted(ax: Axes, fit: FitRecord) -> None:
    note(ax, f"No power-law fit drawn:\n{wrap(fit.why_not)}", loc="lower left")


def wrap(text: str, width: int = 48) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return "\n".join(lines)

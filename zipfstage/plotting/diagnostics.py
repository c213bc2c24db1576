"""How xmin was chosen: KS distance and alpha across candidate xmin, and the bootstrap draws."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from zipfstage.formatting import fmt_fixed, fmt_number
from zipfstage.plotting import style
from zipfstage.plotting.annotate import not_fitted, note
from zipfstage.plotting.samples import metric_label
from zipfstage.records import FitRecord


def diagnostics_figure(fit: FitRecord, curves: dict[str, np.ndarray]) -> Figure:
    """Scan panels (KS vs xmin, alpha vs xmin) and, where a bootstrap ran, its distributions."""
    boot = [name for name in ("bootstrap_alpha", "bootstrap_xmin") if _finite(curves.get(name))]
    n_panels = 2 + len(boot)
    with style.styled():
        rows = 1 + (n_panels > 2)
        fig = style.new_figure(
            (8.6, 3.6 * rows + 0.2),
            style.Margins(top=0.75, wspace=0.32, hspace=0.62 if rows > 1 else 0),
        )
        axes = fig.subplots(rows, 2, squeeze=False).ravel()
        fig.suptitle(f"xmin diagnostics · {fit.point} · {fit.metric}", fontweight="bold")
        scan_x = curves.get("scan_xmin")
        exact = curves.get("scan_exact")
        _scan(axes[0], scan_x, curves.get("scan_ks"), fit, "KS distance D", "min", exact)
        _scan(axes[1], scan_x, curves.get("scan_alpha"), fit, "\u03b1 at that xmin", None, None)
        for ax, name in zip(axes[2:], boot, strict=False):
            _bootstrap(ax, np.asarray(curves[name], dtype=float), fit, name)
        for ax in axes[n_panels:]:
            ax.set_visible(False)
        if not fit.ok:
            not_fitted(axes[0], fit)
    return fig


def _finite(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.isfinite(np.asarray(values, dtype=float)).any())


def _scan(
    ax: Axes,
    x: np.ndarray | None,
    y: np.ndarray | None,
    fit: FitRecord,
    label: str,
    best: str | None,
    exact: np.ndarray | None,
) -> None:
    """One scan curve. Where the fit pruned a candidate (`exact` is 0) its KS value is only a
    lower bound that already exceeded the best: drawn as faint marks, not as part of the line."""
    ax.set_xlabel(f"candidate xmin ({metric_label(fit.metric).split('(')[-1].rstrip(')')})")
    ax.set_ylabel(label)
    if x is None or y is None or not _finite(x) or not _finite(y):
        note(ax, "no scan stored for this fit", loc="upper left")
        return
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    style.log_axes(ax, y=False)
    if exact is not None and len(exact) == len(x) and (np.asarray(exact) == 0).any():
        pruned = keep & (np.asarray(exact) == 0)
        marks = (
            (pruned, 1.5, 0.35, style.MUTED_COLOR, "pruned (lower bound)"),
            (keep & ~pruned, 3.0, 1.0, style.DATA_COLOR, "computed exactly"),
        )
        for rows, size, opacity, color, name in marks:
            ax.plot(
                x[rows], y[rows], lw=0, marker=".", ms=size, alpha=opacity, color=color, label=name
            )
    else:
        ax.plot(x[keep], y[keep], color=style.DATA_COLOR, lw=1.4)
    if fit.xmin is not None:
        chosen = f"chosen xmin = {fmt_number(fit.xmin)}"
        ax.axvline(fit.xmin, color=style.FIT_COLOR, ls="--", lw=1.3, label=chosen)
        if fit.alpha is not None and best is None:
            fitted = f"fitted \u03b1 = {fmt_fixed(fit.alpha)}"
            ax.axhline(fit.alpha, color=style.MUTED_COLOR, ls=":", lw=1.0, label=fitted)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, borderaxespad=0.2)


def _bootstrap(ax: Axes, draws: np.ndarray, fit: FitRecord, name: str) -> None:
    draws = draws[np.isfinite(draws)]
    is_alpha = name == "bootstrap_alpha"
    log = not is_alpha and draws.size and draws.min() > 0 and draws.max() / draws.min() > 20
    bins: int | list[float] = 30
    if log:
        style.log_axes(ax, y=False)
        bins = np.geomspace(draws.min(), draws.max(), 30).tolist()
    ax.hist(draws, bins=bins, color=style.DATA_COLOR, alpha=0.75)
    quantity = "\u03b1" if is_alpha else "xmin"
    ax.set_xlabel(f"{quantity} in {draws.size} bootstrap resamples")
    ax.set_ylabel("resamples")
    point = fit.alpha if is_alpha else fit.xmin
    if point is not None:
        shown = fmt_fixed(point) if is_alpha else fmt_number(point)
        ax.axvline(point, color=style.FIT_COLOR, ls="--", lw=1.3, label=f"fitted: {shown}")
    if is_alpha and fit.alpha_ci is not None:
        for edge in fit.alpha_ci:
            ax.axvline(edge, color=style.MUTED_COLOR, ls=":", lw=1.0)
        ax.plot([], [], color=style.MUTED_COLOR, ls=":", label="95% CI")
    if point is not None:
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, borderaxespad=0.2)

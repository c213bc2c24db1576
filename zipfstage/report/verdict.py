"""Plain-language verdicts: Clauset's goodness-of-fit rule and the likelihood-ratio tests."""

from __future__ import annotations

from dataclasses import dataclass

from zipfstage.formatting import fmt_number
from zipfstage.plotting.selection import P_PLAUSIBLE
from zipfstage.records import ALTERNATIVE_LABELS, STATUS_MISSING, Comparison, FitRecord

#: a likelihood-ratio sign counts as significant when its p < 0.1
P_SIGNIFICANT = 0.1

EXPLANATION = (
    "Each power law is fitted by maximum likelihood above a lower cut-off xmin chosen to minimise "
    "the Kolmogorov-Smirnov (KS) distance between the data and the fit (Clauset, Shalizi & Newman "
    "2009). Goodness of fit follows Clauset's rule: a bootstrap p-value (the share of synthetic "
    "power-law data sets that fit worse than the real one) of at least 0.1 means the power law is "
    "plausible; below 0.1 it is ruled out. The p-value is only computed when `zipfstage fit "
    "--bootstrap N` ran; otherwise the verdict reads \u201cnot tested\u201d. Plausible is not "
    "proven: likelihood-ratio tests then compare the power law with a lognormal, an exponential, a "
    "stretched exponential and a truncated power law on the same tail. R is the log-likelihood "
    "ratio: R > 0 favours the power law, R < 0 the alternative, and p is the significance of R's "
    "sign. An alternative is favoured when R < 0 with p < 0.1; R > 0 with p < 0.1 favours the "
    "power law; any other outcome is inconclusive (the data cannot tell the two apart)."
)


@dataclass(frozen=True)
class Verdict:
    """A short verdict and a CSS-friendly kind: plausible, ruled-out, untested, failed, ..."""

    text: str
    kind: str


def clauset_verdict(fit: FitRecord) -> Verdict:
    """Kinds: plausible, ruled-out, untested (no bootstrap), failed (no fit), not-fitted."""
    if fit.status == STATUS_MISSING:
        return Verdict("not fitted (run zipfstage fit)", "not-fitted")
    if not fit.ok:
        return Verdict(f"no fit: {fit.why_not}", "failed")
    if fit.p_value is None:
        return Verdict("not tested (run fit --bootstrap N)", "untested")
    if fit.p_value >= P_PLAUSIBLE:
        return Verdict(
            f"power law plausible (p = {fmt_number(fit.p_value, 2)} \u2265 0.1)", "plausible"
        )
    return Verdict(f"power law ruled out (p = {fmt_number(fit.p_value, 2)} < 0.1)", "ruled-out")


def comparison_verdict(comparison: Comparison) -> Verdict:
    """One likelihood-ratio test in words."""
    label = ALTERNATIVE_LABELS.get(comparison.name, comparison.name)
    if comparison.R is None or comparison.p is None:
        return Verdict("not computed", "untested")
    if comparison.p < P_SIGNIFICANT and comparison.R < 0:
        return Verdict(f"{label} favoured (significant)", "alternative")
    if comparison.p < P_SIGNIFICANT and comparison.R > 0:
        return Verdict(f"power law favoured over {label} (significant)", "power-law")
    return Verdict(f"inconclusive vs {label}", "inconclusive")


def alternatives_verdict(fit: FitRecord) -> Verdict:
    """What the likelihood ratios say, significant results first.

    A significantly favoured alternative (R < 0, p < 0.1) wins the verdict (the strongest one is
    named); otherwise the alternatives the power law beats significantly are named and the rest
    are inconclusive.
    """
    tested = [c for c in fit.comparisons.values() if c.R is not None and c.p is not None]
    if not fit.ok or not tested:
        return Verdict("\u2014", "untested")

    def label(c: Comparison) -> str:
        return ALTERNATIVE_LABELS.get(c.name, c.name)

    def stats(c: Comparison) -> str:
        return f"R = {fmt_number(c.R)}, p = {fmt_number(c.p, 2)}"

    significant = [c for c in tested if c.p is not None and c.p < P_SIGNIFICANT]
    winners = [c for c in significant if c.R is not None and c.R < 0]
    if winners:
        best = min(winners, key=lambda c: c.R if c.R is not None else 0.0)
        return Verdict(f"{label(best)} favoured, significant ({stats(best)})", "alternative")
    beaten = [c for c in significant if c.R is not None and c.R > 0]
    if len(beaten) == len(tested):
        return Verdict("power law favoured over every alternative (significant)", "power-law")
    open_ = ", ".join(label(c) for c in tested if c not in beaten)
    if beaten:
        won = ", ".join(label(c) for c in beaten)
        return Verdict(f"power law favoured over {won}; inconclusive vs {open_}", "inconclusive")
    return Verdict(f"inconclusive: no significant difference vs {open_}", "inconclusive")

"""The report's opening answer: how many fits are plausible power laws, which tails are
heaviest, and whether the extreme tail is one token or spread.

Plain data in, plain sentences out (no rendering, no plotting): html.py and markdown.py escape
the text and turn each finding's target into a link to its figure or section.
"""

from __future__ import annotations

from dataclasses import dataclass

from zipfstage.formatting import EXCLUDES_MARK, fmt_fixed, fmt_interval, fmt_number
from zipfstage.plotting.selection import heaviest_tails
from zipfstage.records import FitRecord
from zipfstage.report import names
from zipfstage.report.tokens import PointTail, TokenGroup, show_token
from zipfstage.report.verdict import clauset_verdict

#: a tail is "one token" when a single token holds at least this share of the top-k values
CONCENTRATED = 0.5
#: the section a tail-token finding links to
TAILS_SECTION = "tails"


@dataclass(frozen=True)
class Finding:
    """One sentence (plain text) and what it links to: a figure's name, else a section's key."""

    text: str
    figure: str | None = None
    section: str | None = None


@dataclass(frozen=True)
class Tally:
    """(point, metric) fits by Clauset's verdict; `failed` tried and found no fit, `not_fitted`
    has no record at all (fit was not run for it)."""

    plausible: int = 0
    ruled_out: int = 0
    untested: int = 0
    failed: int = 0
    not_fitted: int = 0

    @property
    def total(self) -> int:
        return self.plausible + self.ruled_out + self.untested + self.failed + self.not_fitted

    @property
    def fitted(self) -> int:
        return self.plausible + self.ruled_out + self.untested


def tally(fits: list[FitRecord]) -> Tally:
    kinds = [clauset_verdict(fit).kind for fit in fits]
    return Tally(
        plausible=kinds.count("plausible"),
        ruled_out=kinds.count("ruled-out"),
        untested=kinds.count("untested"),
        failed=kinds.count("failed"),
        not_fitted=kinds.count("not-fitted"),
    )


def summarize(fits: list[FitRecord], tails: list[PointTail], tail_metric: str) -> list[Finding]:
    """Every finding, in reading order: the tally, the heaviest tails, where the tail comes from."""
    return [
        _tally_finding(tally(fits)),
        *_interval_findings(fits),
        *_binned_findings(fits),
        *_heaviest_findings(fits),
        *tail_findings(tails, tail_metric),
    ]


def _tally_finding(counts: Tally) -> Finding:
    text = (
        f"Of {counts.total} (point, metric) pairs, {counts.fitted} have a power-law fit: "
        f"{counts.plausible} plausible by Clauset's test (bootstrap p \u2265 0.1), "
        f"{counts.ruled_out} ruled out (p < 0.1), {counts.untested} untested"
    )
    if counts.untested:
        text += " (run zipfstage fit --bootstrap 100 to test them)"
    extra = []
    if counts.failed:
        extra.append(f"{counts.failed} could not be fitted (too few or unusable values)")
    if counts.not_fitted:
        extra.append(f"{counts.not_fitted} not fitted yet")
    return Finding(text + ("; " + ", ".join(extra) if extra else "") + ".", names.ALPHA_DASHBOARD)


def _interval_findings(fits: list[FitRecord]) -> list[Finding]:
    """Say where a bootstrap interval for alpha misses alpha itself, so nobody reads it as a bug."""
    missed = [f for f in fits if f.ok and f.ci_excludes_alpha]
    if not missed:
        return []
    with_ci = sum(1 for f in fits if f.ok and f.alpha_ci is not None)
    example = missed[0]
    return [
        Finding(
            f"{len(missed)} of {with_ci} bootstrap 95 % intervals for \u03b1 lie wholly to one "
            f"side of \u03b1 (marked {EXCLUDES_MARK} in the table; e.g. {example.metric} at "
            f"{example.point}: \u03b1 = {fmt_fixed(example.alpha)}, interval "
            f"{fmt_interval(example.alpha_ci, None)}): re-fits that choose another xmin give "
            "another \u03b1, so their percentile interval need not contain the estimate "
            "(README, Method).",
            names.ALPHA_DASHBOARD,
        )
    ]


def _binned_findings(fits: list[FitRecord]) -> list[Finding]:
    """Say where the grid's rounding moves alpha by more than 2 sigma, largest move first."""
    moved = sorted(
        (f for f in fits if f.ok and f.binning_moves_alpha),
        key=lambda f: -abs((f.alpha or 0.0) - (f.alpha_binned or 0.0)),
    )
    if not moved:
        return []
    on_grid = sum(1 for f in fits if f.ok and f.alpha_binned is not None)
    top = moved[0]
    return [
        Finding(
            f"{len(moved)} of {on_grid} fits on the bf16/fp16 grid have an \u03b1 that rounding "
            f"moves by more than 2\u03c3: the binned likelihood, which reads each stored value "
            f"as the interval that rounds to it, gives {top.metric} at {top.point} "
            f"\u03b1 = {fmt_fixed(top.alpha_binned)} against {fmt_fixed(top.alpha)}. Steep tails "
            "span few grid steps, where the continuous estimate runs high; the table shows the "
            "binned \u03b1 beside such fits (README, Method).",
            names.ccdf_name(top.point, top.metric),
        )
    ]


def _heaviest_findings(fits: list[FitRecord]) -> list[Finding]:
    heaviest = heaviest_tails(fits)
    if not heaviest:
        fitted = sorted((f for f in fits if f.ok), key=lambda f: f.alpha or 0.0)
        if not fitted:
            return []
        f = fitted[0]
        return [
            Finding(
                f"No fit is a plausible power law yet, so no heavy tail is confirmed; the smallest "
                f"\u03b1 among the fits is {fmt_fixed(f.alpha)} ({f.metric} at {f.point}).",
                names.ccdf_name(f.point, f.metric),
            )
        ]
    ordinal = ("The heaviest", "The second heaviest", "The third heaviest")
    return [
        Finding(
            f"{ordinal[min(i, 2)] if i < 3 else 'A heavy'} plausible tail is {f.metric} at "
            f"{f.point}: \u03b1 = {fmt_fixed(f.alpha)} above xmin = {fmt_number(f.xmin)} "
            f"({f.n_tail or 0:,} values in the tail).",
            names.ccdf_name(f.point, f.metric),
        )
        for i, f in enumerate(heaviest)
    ]


def tail_findings(tails: list[PointTail], metric: str) -> list[Finding]:
    """Points whose top values are mostly one token (grouped by that token), then the rest."""
    by_token: dict[int, list[PointTail]] = {}
    spread = []
    for tail in tails:
        if tail.groups and tail.groups[0].share >= CONCENTRATED:
            by_token.setdefault(tail.groups[0].token_id, []).append(tail)
        elif tail.groups:
            spread.append(tail)
    findings = [_concentrated(group, metric) for group in by_token.values()]
    if spread:
        largest = max(t.groups[0].share for t in spread)
        findings.append(
            Finding(
                f"At {_points(spread)}, the top {len(spread[0].tokens)} {metric} values are "
                f"spread over many tokens: no token holds more than {largest:.0%} of them.",
                section=TAILS_SECTION,
            )
        )
    return findings


def _concentrated(tails: list[PointTail], metric: str) -> Finding:
    top = tails[0].groups[0]
    shares = {t.groups[0].share for t in tails}
    text = (
        f"At {_points(tails)}, one token makes the extreme {metric} tail: "
        f"{describe_token(top)} holds {'' if len(shares) == 1 else 'at least '}{min(shares):.0%} "
        f"of the top {len(tails[0].tokens)} values"
    )
    later = [t.groups_after_first for t in tails if t.groups_after_first]
    if top.positions == (0,) and later:
        leader = later[0][0]
        if leader.share >= CONCENTRATED:
            text += f"; after position 0, {describe_token(leader)} leads ({leader.share:.0%})"
        else:
            text += "; after position 0 the largest values are spread over many tokens"
    return Finding(text + ".", section=TAILS_SECTION)


def describe_token(group: TokenGroup) -> str:
    """The token in words: the first token, a delimiter, or a token, with its text."""
    shown = f"\u201c{show_token(group)}\u201d"
    if group.positions == (0,):
        return f"the first token {shown} (position 0)"
    if group.text is not None and not any(c.isalnum() for c in group.text):
        return f"the delimiter {shown}"
    return f"the token {shown}"


def _points(tails: list[PointTail]) -> str:
    shown = [t.point for t in tails]
    return ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")

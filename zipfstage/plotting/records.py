"""A typed, defensive view of one fit record (the JSON dict `fit` stores per point and metric)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zipfstage.store.layout import CHANNEL_WISE

ALTERNATIVES = ("lognormal", "exponential", "stretched_exponential", "truncated_power_law")
ALTERNATIVE_LABELS = {
    "lognormal": "lognormal",
    "exponential": "exponential",
    "stretched_exponential": "stretched exp.",
    "truncated_power_law": "truncated power law",
}


@dataclass(frozen=True)
class Comparison:
    """Likelihood-ratio test of the power law against one alternative (R > 0 favours the law)."""

    name: str
    R: float | None
    p: float | None
    params: dict[str, float]


@dataclass(frozen=True)
class Fit:
    """One (point, metric[, channel]) fit; `ok` False means drawn without a fit, saying `reason`."""

    point: str
    metric: str
    status: str
    reason: str | None = None
    alpha: float | None = None
    alpha_ci: tuple[float, float] | None = None
    xmin: float | None = None
    xmax: float | None = None
    ks_distance: float | None = None
    n_tail: int | None = None
    n: int | None = None
    n_dropped: int | None = None
    sigma: float | None = None
    p_value: float | None = None
    slope: float | None = None
    intercept: float | None = None
    r2: float | None = None
    channel: int | None = None
    skip_positions: int = 0
    flags: list[str] = field(default_factory=list)
    comparisons: dict[str, Comparison] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.alpha is not None and self.xmin is not None

    @property
    def tail_share(self) -> float:
        """The fraction of the fitted sample at or above xmin (scales the tail models)."""
        if not self.n_tail or not self.n:
            return 1.0
        return self.n_tail / self.n

    @property
    def why_not(self) -> str:
        """Why there is no fit to draw (for 'not fitted' notes)."""
        if self.ok:
            return ""
        return self.reason or f"fit status: {self.status}"

    @classmethod
    def from_record(cls, point: str, metric: str, record: dict[str, Any]) -> Fit:
        ci = record.get("alpha_ci")
        alpha_ci = (float(ci[0]), float(ci[1])) if ci is not None and _pair(ci) else None
        comparisons = {
            name: Comparison(
                name=name,
                R=_float(value.get("R")),
                p=_float(value.get("p")),
                params={
                    k: float(v)
                    for k, v in (value.get("params") or {}).items()
                    if _float(v) is not None
                },
            )
            for name, value in (record.get("comparisons") or {}).items()
            if isinstance(value, dict)
        }
        return cls(
            point=point,
            metric=metric,
            status=str(record.get("status", "ok")),
            reason=record.get("reason"),
            alpha=_float(record.get("alpha")),
            alpha_ci=alpha_ci,
            xmin=_float(record.get("xmin")),
            xmax=_float(record.get("xmax")),
            ks_distance=_float(record.get("ks_distance")),
            n_tail=_int(record.get("n_tail")),
            n=_int(record.get("n")),
            n_dropped=_int(record.get("n_dropped")),
            sigma=_float(record.get("sigma")),
            p_value=_float(record.get("p_value")),
            slope=_float(record.get("slope")),
            intercept=_float(record.get("intercept")),
            skip_positions=int(record.get("skip_positions") or 0),
            r2=_float(record.get("r2")),
            channel=_int(record.get("channel")),
            flags=[str(f) for f in record.get("flags") or []],
            comparisons=comparisons,
        )

    @classmethod
    def missing(cls, point: str, metric: str) -> Fit:
        return cls(
            point=point,
            metric=metric,
            status="missing",
            reason="not fitted: run `zipfstage fit` for this point and metric",
        )


FitTable = dict[str, dict[str, Fit]]
ChannelFits = dict[str, list[Fit]]


def parse_records(records: dict[str, dict[str, Any]]) -> tuple[FitTable, ChannelFits]:
    """Split stored records: scalar fits {point: {metric: Fit}}, channel fits {point: [Fit]}."""
    scalar: FitTable = {}
    channels: ChannelFits = {}
    for point, by_metric in records.items():
        for metric, record in by_metric.items():
            if metric == CHANNEL_WISE or isinstance(record, list):
                items = record if isinstance(record, list) else [record]
                channels[point] = sorted(
                    (Fit.from_record(point, metric, r) for r in items if isinstance(r, dict)),
                    key=lambda f: -1 if f.channel is None else f.channel,
                )
            else:
                scalar.setdefault(point, {})[metric] = Fit.from_record(point, metric, record)
    return scalar, channels


def lookup(table: FitTable, point: str, metric: str) -> Fit:
    return table.get(point, {}).get(metric) or Fit.missing(point, metric)


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _pair(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(_float(v) is not None for v in value)
    )

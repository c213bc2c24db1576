"""The fit record: the one schema `fit` writes and `plot` and `report` read.

A record is the JSON dict stored per (point, metric) in the store (`fits/<point>/<metric>`) and in
`fits.json`; `channel_wise` holds a list of them, one per sampled channel. `FitRecord` is its typed
form both ways: `to_record()` writes it, `from_record()` reads it defensively (NaN, strings and
missing keys become None). This module imports numpy only, so the report and a notebook can read
fits without numba, matplotlib or torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUS_OK = "ok"
STATUS_TOO_FEW = "too_few"
STATUS_FAILED = "failed"
#: no record for this (point, metric): `fit` did not run on it
STATUS_MISSING = "missing"

#: the metric whose store array is [N, channels]; its record is a list, one per channel
CHANNEL_WISE = "channel_wise"

TOPK_ABS = "topk_abs"
TOPK_CHANNEL = "topk_channel"
TOPK_SIGN = "topk_sign"
#: the [N, k] top-channel arrays: read by the outlier analysis, never fitted per metric
TOPK_ARRAYS = frozenset({TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN})

#: the [N, heads] arrays of an attn point (`layer_3.attn`), in the order collect computes them
ATTN_METRICS = ("sink", "first_token", "prev_token", "attn_max", "attn_entropy")
#: the attn metrics `fit` fits, per head (the heads are the channels there)
ATTN_FITTED = ("sink", "attn_entropy")
#: how an attn point's name ends (`layer_3.attn`; point_names.ATTN)
ATTN_SUFFIX = ".attn"

#: the likelihood-ratio alternatives, in the order tables show them
ALTERNATIVES = ("lognormal", "exponential", "stretched_exponential", "truncated_power_law")
ALTERNATIVE_LABELS = {
    "lognormal": "lognormal",
    "exponential": "exponential",
    "stretched_exponential": "stretched exp.",
    "truncated_power_law": "truncated power law",
}

#: keys of a full record, in the order they are written (context keys follow, where set)
_ESTIMATE_KEYS = (
    "alpha",
    "xmin",
    "xmax",
    "ks_distance",
    "ks_sup",
    "n_tail",
    "n",
    "n_dropped",
    "sigma",
    "alpha_binned",
    "alpha_ci",
    "xmin_ci",
    "p_value",
    "n_failed",
    "p_value_method",
    "p_value_grid",
    "alpha_grid",
    "slope",
    "intercept",
    "r2",
)
_CONTEXT_KEYS = ("channel", "skip_positions", "store_tokens", "store_id")


@dataclass(frozen=True)
class Comparison:
    """Log-likelihood ratio R of the power law against one alternative (R > 0 favours the law)."""

    name: str = ""
    R: float | None = None
    p: float | None = None
    params: dict[str, float] = field(default_factory=dict)
    nested: bool = False
    #: the alternative's optimiser ended at a stationary point (`fitting.newton.Minimum`); False:
    #: R is from the best point it reached, and the record is flagged `comparison_not_converged`
    converged: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "R": self.R,
            "p": self.p,
            "params": dict(self.params),
            "nested": self.nested,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, name: str, value: Mapping[str, Any]) -> Comparison:
        params = {k: v for k, v in (value.get("params") or {}).items() if _float(v) is not None}
        return cls(
            name=name,
            R=_float(value.get("R")),
            p=_float(value.get("p")),
            params={k: float(v) for k, v in params.items()},
            nested=bool(value.get("nested", False)),
            converged=bool(value.get("converged", True)),
        )


@dataclass(frozen=True)
class ScanCurves:
    """KS distance and alpha for every candidate xmin; `exact` is False where the branch-and-bound
    scan stopped early (there `ks` is a lower bound that already exceeded the winner's distance)."""

    xmin: np.ndarray
    ks: np.ndarray
    alpha: np.ndarray
    exact: np.ndarray


@dataclass(frozen=True)
class FitRecord:
    """One (point, metric[, channel]) power-law fit; `ok` False means no fit, saying `reason`.

    `fit_power_law` returns one (with the scan and bootstrap arrays, which `curves()` hands to the
    store beside the record); `from_record` rebuilds one from a stored record. `n_tail` is None
    only for a fit that crashed, whose record holds just status, reason and n.
    """

    point: str = ""
    metric: str = ""
    status: str = STATUS_OK
    reason: str | None = None
    alpha: float | None = None
    #: alpha by the binned likelihood at the same xmin, for a tail stored on the bf16/fp16 grid
    #: (`fitting/binned.py`: the continuous alpha is biased high there for steep tails); None
    #: for data off the grid, discrete fits and fits truncated at xmax
    alpha_binned: float | None = None
    alpha_ci: tuple[float, float] | None = None
    xmin: float | None = None
    xmin_ci: tuple[float, float] | None = None
    xmax: float | None = None
    ks_distance: float | None = None
    #: the two-sided KS supremum at xmin (ks_distance is powerlaw's; on tied data they differ)
    ks_sup: float | None = None
    n_tail: int | None = None
    n: int | None = None
    n_dropped: int | None = None
    sigma: float | None = None
    p_value: float | None = None
    #: bootstrap replicates whose re-fit failed: they are left out of the p-value's denominator
    n_failed: int | None = None
    #: how the bootstrap drew its synthetic sets: "iid" (each value independently) or
    #: "sequence_blocks" (whole sequences, for dependent tokens); None without a bootstrap and in
    #: records written before this field existed
    p_value_method: str | None = None
    #: the grid synthetic tails were rounded to: "bfloat16", "float16" or "continuous"
    p_value_grid: str | None = None
    #: the grid alpha was chosen on instead of the exact MLE (`fit_power_law(alpha_grid=...)`,
    #: Clauset's "1.5:0.01:3.5"); None for the exact MLE
    alpha_grid: str | None = None
    slope: float | None = None
    intercept: float | None = None
    r2: float | None = None
    channel: int | None = None
    skip_positions: int | None = None
    store_tokens: int | None = None
    #: the store generation the fit was computed from (`RunAttributes.store_id`)
    store_id: str | None = None
    flags: tuple[str, ...] = ()
    #: fitted as a discrete power law on the integers (`fit_power_law(x, discrete=True)`)
    discrete: bool = False
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    scan: ScanCurves | None = field(default=None, repr=False, compare=False)
    bootstrap_alpha: np.ndarray | None = field(default=None, repr=False, compare=False)
    bootstrap_xmin: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a comparison knows its alternative's name: the key it is filed under
        named = {
            k: c if c.name == k else dataclasses.replace(c, name=k)
            for k, c in self.comparisons.items()
        }
        object.__setattr__(self, "comparisons", named)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK and self.alpha is not None and self.xmin is not None

    @property
    def ci_excludes_alpha(self) -> bool:
        """The bootstrap interval lies wholly above or below alpha (README, "Intervals that miss
        their estimate"): a percentile interval of a skewed re-fit distribution can."""
        if self.alpha is None or self.alpha_ci is None:
            return False
        low, high = sorted(self.alpha_ci)
        return not low <= self.alpha <= high

    @property
    def binning_moves_alpha(self) -> bool:
        """The binned-likelihood alpha (bf16/fp16 tails) lies more than 2 sigma from alpha: the
        grid's rounding biases the continuous estimate there (README, Method)."""
        if self.alpha is None or self.alpha_binned is None or not self.sigma:
            return False
        return abs(self.alpha - self.alpha_binned) > 2 * self.sigma

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

    def replace(self, **changes: Any) -> FitRecord:
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """The stored JSON record (NaN and inf become None, as JSON has neither)."""
        if self.n_tail is None:
            record: dict[str, Any] = {"status": self.status, "reason": self.reason, "n": self.n}
        else:
            record = {key: getattr(self, key) for key in _ESTIMATE_KEYS}
            for key in ("alpha_ci", "xmin_ci"):
                record[key] = None if record[key] is None else list(record[key])
            record["comparisons"] = {k: c.to_dict() for k, c in self.comparisons.items()}
            record.update(status=self.status, reason=self.reason, flags=list(self.flags))
            record["discrete"] = self.discrete
        for key in _CONTEXT_KEYS:
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return jsonable(record)

    def to_json(self) -> str:
        return json.dumps(self.to_record(), allow_nan=False)

    def curves(self) -> dict[str, np.ndarray]:
        """Diagnostic arrays: the scan (all candidates) and, with a bootstrap, its draws."""
        out: dict[str, np.ndarray] = {}
        if self.scan is not None:
            out["scan_xmin"] = self.scan.xmin
            out["scan_ks"] = self.scan.ks
            out["scan_alpha"] = self.scan.alpha
            out["scan_exact"] = self.scan.exact.astype(np.float64)
        if self.bootstrap_alpha is not None:
            out["bootstrap_alpha"] = self.bootstrap_alpha
        if self.bootstrap_xmin is not None:
            out["bootstrap_xmin"] = self.bootstrap_xmin
        return out

    @classmethod
    def from_record(cls, point: str, metric: str, record: Mapping[str, Any]) -> FitRecord:
        """Read a stored record; values of the wrong type read as None, never as an error."""
        comparisons = {
            name: Comparison.from_dict(name, value)
            for name, value in (record.get("comparisons") or {}).items()
            if isinstance(value, dict)
        }
        numbers = {key: _float(record.get(key)) for key in _FLOAT_KEYS}
        counts = {key: _int(record.get(key)) for key in _INT_KEYS}
        return cls(
            point=point,
            metric=metric,
            status=str(record.get("status", STATUS_OK)),
            reason=record.get("reason"),
            store_id=_text(record.get("store_id")),
            p_value_method=_text(record.get("p_value_method")),
            p_value_grid=_text(record.get("p_value_grid")),
            alpha_grid=_text(record.get("alpha_grid")),
            alpha_ci=_pair(record.get("alpha_ci")),
            xmin_ci=_pair(record.get("xmin_ci")),
            flags=tuple(str(f) for f in record.get("flags") or []),
            discrete=record.get("discrete") is True,
            comparisons=comparisons,
            **numbers,  # type: ignore[arg-type]
            **counts,  # type: ignore[arg-type]
        )

    @classmethod
    def missing(cls, point: str, metric: str) -> FitRecord:
        return cls(
            point=point,
            metric=metric,
            status=STATUS_MISSING,
            reason="not fitted: run `zipfstage fit` for this point and metric",
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_FLOAT_KEYS = (
    "alpha",
    "alpha_binned",
    "xmin",
    "xmax",
    "ks_distance",
    "ks_sup",
    "sigma",
    "p_value",
    "slope",
    "intercept",
    "r2",
)
_INT_KEYS = ("n_tail", "n", "n_dropped", "n_failed", "channel", "skip_positions", "store_tokens")

FitTable = dict[str, dict[str, FitRecord]]
ChannelFits = dict[str, list[FitRecord]]
#: stored records as {point: {metric: record, or a list of records for channel_wise}}
RawRecords = dict[str, dict[str, Any]]


def parse_records(records: RawRecords) -> tuple[FitTable, ChannelFits]:
    """Split stored records: scalar fits {point: {metric: fit}}, channel fits {point: [fit]}."""
    scalar: FitTable = {}
    channels: ChannelFits = {}
    for point, by_metric in records.items():
        if point.endswith(ATTN_SUFFIX):  # per-head fits: `head_fits` reads them
            continue
        for metric, record in by_metric.items():
            if metric == CHANNEL_WISE or isinstance(record, list):
                items = record if isinstance(record, list) else [record]
                channels[point] = sorted(
                    (FitRecord.from_record(point, metric, r) for r in items if isinstance(r, dict)),
                    key=lambda f: -1 if f.channel is None else f.channel,
                )
            else:
                scalar.setdefault(point, {})[metric] = FitRecord.from_record(point, metric, record)
    return scalar, channels


def head_fits(records: RawRecords) -> dict[str, dict[str, list[FitRecord]]]:
    """The attn points' per-head fits: {point: {metric: [fit per head, in head order]}}."""
    fits: dict[str, dict[str, list[FitRecord]]] = {}
    for point, by_metric in records.items():
        if not point.endswith(ATTN_SUFFIX):
            continue
        for metric, record in by_metric.items():
            items = record if isinstance(record, list) else [record]
            fits.setdefault(point, {})[metric] = [
                FitRecord.from_record(point, metric, r) for r in items if isinstance(r, dict)
            ]
    return fits


def lookup(table: FitTable, point: str, metric: str) -> FitRecord:
    return table.get(point, {}).get(metric) or FitRecord.missing(point, metric)


def jsonable(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, tuples to lists, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _pair(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = _float(value[0]), _float(value[1])
    return None if low is None or high is None else (low, high)

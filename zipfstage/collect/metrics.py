"""Per-token metrics of a hidden vector: one formula each, over shared per-token intermediates.

Adding a metric is one function plus one `@metric("name")` line. Each function takes the
`Intermediates` of a [tokens, d] matrix (sums, moments, the median, ...) and returns one value per
token. Two producers compute the intermediates: `HiddenStats` with torch on the device (a GPU),
and `cpu_reduce` with compiled row kernels on a CPU; both are tested against float64 references.
Degenerate vectors (all zeros) give NaN where a ratio is undefined, never a crash.

|h| sorted along channels is computed once (per point on a CPU, per width on a GPU, where the
reducer stacks every point of a width) and read by median_abs, max_to_median, gini, hill_tail and
the top-k channels (`top_channels`), so one sort serves them all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import numpy as np
import torch

from zipfstage.errors import ZipfstageError
from zipfstage.records import TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN

CHANNEL_WISE = "channel_wise"
#: the [tokens, k] arrays of the top-k family, in the order `top_channels` returns them
TOPK_NAMES = (TOPK_ABS, TOPK_CHANNEL, TOPK_SIGN)
MetricFn = Callable[["Intermediates"], torch.Tensor]
METRICS: dict[str, MetricFn] = {}


def metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Register a scalar metric under `name`."""

    def register(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return register


class Intermediates(Protocol):
    """Per-token quantities the metric formulas read, each a [tokens] tensor.

    `HiddenStats` computes them with torch on any device; on a CPU `cpu_reduce.RowStats` takes
    them from compiled kernels. The formulas below are the one definition of every metric.
    """

    @property
    def d(self) -> int: ...
    @property
    def hill_k(self) -> int: ...
    @property
    def l1(self) -> torch.Tensor: ...
    @property
    def sum_sq(self) -> torch.Tensor: ...
    @property
    def sum_fourth(self) -> torch.Tensor: ...
    @property
    def variance(self) -> torch.Tensor: ...
    @property
    def fourth_central(self) -> torch.Tensor: ...
    @property
    def energy_entropy(self) -> torch.Tensor: ...
    @property
    def max_abs(self) -> torch.Tensor: ...
    @property
    def median_abs(self) -> torch.Tensor: ...
    @property
    def gini_sum(self) -> torch.Tensor:
        """sum_i (2i - d - 1) x_(i) over |h| ascending, i = 1..d."""
        ...

    @property
    def hill_log_excess(self) -> torch.Tensor:
        """sum_{i<=k_h} log x_(i) - k_h log x_(k_h+1) over |h| descending (NaN if x_(k_h+1) = 0)."""
        ...

    @property
    def hill_reference(self) -> torch.Tensor: ...


class HiddenStats:
    """The intermediates of a [tokens, d] matrix, computed with torch in float32.

    On a GPU the reducer hands it every point of one width at once (their rows stacked), so
    each intermediate is one kernel for all of them: the operations per batch grow with the
    number of widths, not of points. Every row is reduced on its own, so stacking changes no
    value. `numpy_sort` (the default on a CPU) sorts with numpy, ~20x faster there than torch;
    False keeps every operation in torch, as on a GPU.
    """

    def __init__(
        self,
        hidden: torch.Tensor,
        hill_k: int | None = None,
        with_order: bool = False,
        numpy_sort: bool | None = None,
    ) -> None:
        self.h = hidden.float()
        self.d = self.h.shape[-1]
        self.hill_k = hill_order(self.d, hill_k)
        #: top-k wanted: in torch the one sort then also returns the channel order
        self.with_order = with_order
        self.numpy_sort = self.h.device.type == "cpu" if numpy_sort is None else numpy_sort

    @cached_property
    def abs(self) -> torch.Tensor:
        return self.h.abs()

    @cached_property
    def sq(self) -> torch.Tensor:
        return self.h.square()

    @cached_property
    def _energy(self) -> torch.Tensor:
        """sum h^2 accumulated in float64: `sum_sq` rounds it to float32, and the entropy's
        float64 redo reads it as it is, so one pass serves both."""
        return self.sq.sum(-1, dtype=torch.float64)

    @cached_property
    def sum_sq(self) -> torch.Tensor:
        return self._energy.float()

    @cached_property
    def sum_fourth(self) -> torch.Tensor:
        return torch.linalg.vecdot(self.sq, self.sq)

    @cached_property
    def l1(self) -> torch.Tensor:
        return self.abs.sum(-1)

    @cached_property
    def max_abs(self) -> torch.Tensor:
        return self.abs.amax(-1)

    @cached_property
    def _numpy_ascending(self) -> torch.Tensor:
        """|h| sorted ascending by numpy (on a CPU ~20x faster than torch's sort)."""
        return torch.from_numpy(np.sort(self.abs.numpy(), axis=-1))

    @cached_property
    def descending_abs(self) -> torch.Tensor:
        """|h| sorted descending along channels, in torch: the top-k's stable sort when top-k
        is wanted (one sort serves all), else a sort of the values alone."""
        if self.with_order:
            return self.descending[0]
        return self.abs.sort(-1, descending=True).values

    def ascending_abs(self, start: int) -> torch.Tensor:
        """|h| ascending from the `start`-th smallest to the largest (d - start columns)."""
        if self.numpy_sort:
            return self._numpy_ascending[..., start:]
        return self.descending_abs[..., : self.d - start].flip(-1)

    @cached_property
    def descending(self) -> tuple[torch.Tensor, torch.Tensor]:
        """|h| sorted descending and the channel order; a stable sort puts the lowest channel
        first among equal values (the device path of `top_channels`)."""
        ordered = torch.sort(self.abs, dim=-1, descending=True, stable=True)
        return ordered.values, ordered.indices

    def smallest(self, i: int) -> torch.Tensor:
        """The i-th smallest |h| (0-based) per token, read in place (no flipped copy)."""
        if self.numpy_sort:
            return self._numpy_ascending[..., i]
        return self.descending_abs[..., self.d - 1 - i]

    @cached_property
    def median_abs(self) -> torch.Tensor:
        """Median |h|: the mean of the two middle values when d is even."""
        half = self.d // 2
        if self.d % 2:
            return self.smallest(half)
        return 0.5 * (self.smallest(half - 1) + self.smallest(half))

    @cached_property
    def _central_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        centred_sq = (self.h - self.h.mean(-1, keepdim=True)).square_()
        return centred_sq.mean(-1), torch.linalg.vecdot(centred_sq, centred_sq) / self.d

    @property
    def variance(self) -> torch.Tensor:
        return self._central_moments[0]

    @property
    def fourth_central(self) -> torch.Tensor:
        return self._central_moments[1]

    @cached_property
    def energy_entropy(self) -> torch.Tensor:
        """From the shares themselves, with the largest share's term redone in float64.

        The shortcut log S - sum(h^2 log h^2) / S cancels badly in float32. A share near 1 (a
        massive activation) rounds to within 6e-8 of 1 in float32, so its term -p log p is
        recomputed as -(1 - e) log1p(-e) from the other channels' energy e, in float64 per
        token. The largest share is max|h|^2 / S: the same float32 number as the largest of
        the shares (rounding is monotone), without another full-size pass.
        """
        share = self.sq / self.sum_sq.unsqueeze(-1)
        # share * log(max(share, tiny)) is xlogy (0 log 0 = 0) at half its CPU cost; shares below
        # float32's tiny (~1e-38) change the sum by less than 1e-36
        logs = share.clamp_min(torch.finfo(torch.float32).tiny).log_()
        entropy = -torch.linalg.vecdot(share, logs)
        top_share = self.max_abs.square() / self.sum_sq
        # always computed, never branched on: `if dominant.any()` would wait for the GPU
        total = self._energy
        top = self.max_abs.double()
        rest = (total - top.square()).clamp_min(0) / total
        exact = -(1 - rest) * torch.log1p(-rest)
        rounded = -(top_share * top_share.clamp_min(torch.finfo(torch.float32).tiny).log())
        redone = ((entropy - rounded).double() + exact).float()
        return torch.where(top_share > 0.5, redone, entropy)

    @cached_property
    def gini_sum(self) -> torch.Tensor:
        """Over |h| ascending, as the CPU kernels sum it: this sum cancels (its terms change
        sign), so summing the descending values instead changes it by ~1e-6 relative."""
        return self.ascending_abs(0) @ _gini_weights(self.d, self.h.device)

    @cached_property
    def hill_reference(self) -> torch.Tensor:
        return self.smallest(self.d - self.hill_k - 1)

    @cached_property
    def hill_log_excess(self) -> torch.Tensor:
        top = self.ascending_abs(self.d - self.hill_k)  # k_h columns: a small flip
        return top.log().sum(-1) - self.hill_k * self.hill_reference.log()


@functools.cache
def _gini_weights(d: int, device: torch.device) -> torch.Tensor:
    """(2i - d - 1) for the i-th smallest, i = 1..d (exact in float32), made once per width."""
    return torch.arange(1 - d, d, 2, device=device, dtype=torch.float32)


def _nan_where_zero(values: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, values, torch.full_like(values, math.nan))


def _rms(s: Intermediates) -> torch.Tensor:
    return (s.sum_sq / s.d).sqrt()


@metric("rms")
def rms(s: Intermediates) -> torch.Tensor:
    return _rms(s)


@metric("l2_norm")
def l2_norm(s: Intermediates) -> torch.Tensor:
    return s.sum_sq.sqrt()


@metric("l1_norm")
def l1_norm(s: Intermediates) -> torch.Tensor:
    return s.l1


@metric("max_abs")
def max_abs(s: Intermediates) -> torch.Tensor:
    return s.max_abs


@metric("mean_abs")
def mean_abs(s: Intermediates) -> torch.Tensor:
    return s.l1 / s.d


@metric("std")
def std(s: Intermediates) -> torch.Tensor:
    return s.variance.sqrt()


@metric("kurtosis")
def kurtosis(s: Intermediates) -> torch.Tensor:
    """Pearson kurtosis E[(h - mean)^4] / std^4 (3 for a Gaussian)."""
    return _nan_where_zero(s.fourth_central / s.variance.square(), s.variance)


@metric("max_to_median")
def max_to_median(s: Intermediates) -> torch.Tensor:
    """max|h| / median|h|, the median averaging the two middle values when d is even."""
    return _nan_where_zero(s.max_abs / s.median_abs, s.median_abs)


@metric("crest")
def crest(s: Intermediates) -> torch.Tensor:
    return _nan_where_zero(s.max_abs / _rms(s), s.sum_sq)


@metric("participation_ratio")
def participation_ratio(s: Intermediates) -> torch.Tensor:
    """(sum h^2)^2 / sum h^4: how many channels carry the energy."""
    return _nan_where_zero(s.sum_sq.square() / s.sum_fourth, s.sum_fourth)


@metric("entropy")
def entropy(s: Intermediates) -> torch.Tensor:
    """Shannon entropy (nats) of the energy shares h_c^2 / sum h^2, with 0 log 0 = 0."""
    return s.energy_entropy


@metric("gini")
def gini(s: Intermediates) -> torch.Tensor:
    """Gini coefficient of |h|: sum_i (2i - d - 1) x_(i) / (d sum x), i = 1..d ascending."""
    return _nan_where_zero(s.gini_sum / (s.d * s.l1), s.l1)


@metric("top1_share")
def top1_share(s: Intermediates) -> torch.Tensor:
    return _nan_where_zero(s.max_abs.square() / s.sum_sq, s.sum_sq)


@metric("hoyer")
def hoyer(s: Intermediates) -> torch.Tensor:
    """Hoyer sparsity (sqrt(d) - l1/l2) / (sqrt(d) - 1): 0 dense, 1 one-hot."""
    root_d = math.sqrt(s.d)
    return _nan_where_zero((root_d - s.l1 / s.sum_sq.sqrt()) / (root_d - 1), s.sum_sq)


@metric("median_abs")
def median_abs(s: Intermediates) -> torch.Tensor:
    return s.median_abs


@metric("hill_tail")
def hill_tail(s: Intermediates) -> torch.Tensor:
    """Hill estimate of the tail index of the channel magnitudes, over the top k_h of them.

    alpha = k_h / sum_{i=1..k_h} log(x_(i) / x_(k_h+1)), x_(1) >= x_(2) >= ... the sorted |h|;
    NaN where x_(k_h+1) == 0 or the top k_h values all equal it (the estimate is undefined).
    """
    if s.hill_k < 1:
        return torch.full_like(s.l1, math.nan)
    total = s.hill_log_excess
    valid = (s.hill_reference > 0) & (total > 0)
    return torch.where(valid, s.hill_k / total.where(valid, 1.0), math.nan)


def hill_order(d: int, hill_k: int | None) -> int:
    """k_h: `hill_k`, or max(10, d // 100) when None; at most d - 1 (x_(k_h+1) must exist)."""
    k = max(10, d // 100) if hill_k is None else hill_k
    return max(0, min(k, d - 1))


def top_channels(s: HiddenStats, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k largest |h_c| per token, descending, their channels and signs (k <= d).

    Equal magnitudes are ordered by channel, lowest first, on every device, so two runs of the
    same data give the same channels. Returns float32 |h|, int32 channel, int8 sign (+1 / -1).
    """
    if s.numpy_sort:
        kth = s.smallest(s.d - k).numpy() if k else np.empty(0, np.float32)
        index = torch.from_numpy(_top_channels_numpy(s.abs.numpy(), kth, k))
    else:
        index = s.descending[1][..., :k]
    signed = s.h.gather(-1, index)
    sign = torch.where(signed < 0, -1, 1).to(torch.int8)
    return signed.abs(), index.to(torch.int32), sign


def top_channels_block(s: HiddenStats, k: int) -> torch.Tensor:
    """`top_channels` in torch as one [3, tokens, k] float32 block (|h|, channel, sign), the
    layout the reducer copies to the host: the sorted values are the magnitudes themselves, and
    channel and sign go straight to float32 (channels < 2**24 are exact) without int32 or int8
    copies on the device."""
    values, order = s.descending
    index = order[..., :k]
    sign = torch.where(s.h.gather(-1, index) < 0, -1.0, 1.0)
    return torch.stack([values[..., :k], index.float(), sign])


def _top_channels_numpy(magnitude: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Channels of the k largest values (`kth` is each row's k-th largest): every row with
    exactly k values at or above it (no tie at the boundary) in one vectorised pass, the rest
    by a stable argsort."""
    n, d = magnitude.shape
    channels = np.empty((n, k), dtype=np.int64)
    if k == 0 or n == 0:
        return channels
    above = magnitude >= kth[:, None]
    clean = above.sum(-1) == k
    if clean.all():
        channels[:] = (np.flatnonzero(above) % d).reshape(n, k)  # row-major: ascending channels
    else:
        rows = np.flatnonzero(clean)
        channels[rows] = (np.flatnonzero(above[rows]) % d).reshape(len(rows), k)
        tied = np.flatnonzero(~clean)
        channels[tied] = np.argsort(-magnitude[tied], axis=-1, kind="stable")[:, :k]
    values = np.take_along_axis(magnitude, channels, -1)
    order = np.argsort(-values, axis=-1, kind="stable")  # descending; ties keep channel order
    return np.take_along_axis(channels, order, -1)


#: the metrics defined above, which read only `Intermediates` (the compiled CPU kernels' output);
#: a metric registered elsewhere gets a `HiddenStats`, computed with torch, on every device
BUILT_IN: frozenset[str] = frozenset(METRICS)
ALL_METRICS: tuple[str, ...] = (*METRICS.keys(), CHANNEL_WISE)


def resolve_metrics(requested: list[str]) -> list[str]:
    """Expand 'all', check names, keep the registry's order."""
    if "all" in requested:
        return list(ALL_METRICS)
    unknown = [name for name in requested if name not in ALL_METRICS]
    if unknown:
        raise ZipfstageError(
            f"unknown metric {', '.join(unknown)}; choose from: {', '.join(ALL_METRICS)}, all"
        )
    return [name for name in ALL_METRICS if name in requested]


def compute_scalars(
    hidden: torch.Tensor, names: list[str], hill_k: int | None = None
) -> torch.Tensor:
    """[names, tokens] float32 on the hidden state's device."""
    return scalars_of(HiddenStats(hidden.reshape(-1, hidden.shape[-1]), hill_k), names)


def scalars_of(stats: Intermediates, names: list[str]) -> torch.Tensor:
    """[names, tokens] float32 from shared intermediates: the one path collect's reducer and the
    tests use, whichever way the intermediates were computed."""
    return torch.stack([METRICS[name](stats).to(torch.float32) for name in names])

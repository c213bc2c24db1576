"""Choosing what to intervene on: from outliers.json (massive channels, Dettmers outlier features,
super-weight candidates), from `--target`, and the random controls beside each (numpy only).

Everything here is checked against the store's model attributes (layer count, hidden size), so a
bad `--target` is refused before a model is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from zipfstage.ablate.spec import (
    CHANNELS,
    DETTMERS,
    MASSIVE,
    SUPER_WEIGHT,
    Target,
    TokenRule,
    Tokens,
    WeightEdit,
)
from zipfstage.errors import ZipfstageError

KEYWORDS = (MASSIVE, DETTMERS, SUPER_WEIGHT)
_EXPLICIT = re.compile(r"^layer_(\d+):(\d+(?:,\d+)*)$")
#: a token carries a massive channel when its |h| there is at least this share of the channel's
#: largest value (the share the outlier analysis uses for super-weight spikes)
CARRIER_SHARE = 0.5
#: sites whose vectors are d_model wide: Dettmers channels found there are residual-stream dims
_MODEL_WIDTH_SITES = ("resid_post", "resid_mid", "attn_out", "mlp_out", "embed")


@dataclass(frozen=True)
class Massive:
    """The first massive layer's channels: where Sun et al. intervene, and how large they are."""

    layer: int
    channels: tuple[int, ...]
    value: float
    source: str

    def rule(self, tokens: Tokens, sun_abs: float) -> TokenRule:
        """The token rule for these channels: carriers reach half the massive value (and Sun's
        absolute threshold), read at the edited layer."""
        threshold = max(sun_abs, CARRIER_SHARE * self.value)
        return TokenRule(tokens, self.channels if tokens == "carriers" else (), threshold)


@dataclass(frozen=True)
class ModelShape:
    """The store's model attributes a target must fit."""

    n_layers: int
    hidden_size: int


def parse_target(text: str, shape: ModelShape) -> str | Target:
    """'massive' | 'dettmers' | 'super_weight', or 'layer_<i>:<c>,<c>' as a Target."""
    text = text.strip()
    if text in KEYWORDS:
        return text
    match = _EXPLICIT.match(text)
    if match is None:
        raise ZipfstageError(
            f"--target {text!r} is not one of {', '.join(KEYWORDS)} or layer_<i>:<channel>,... "
            "(e.g. layer_11:507,247)"
        )
    layer = int(match.group(1))
    channels = tuple(dict.fromkeys(int(c) for c in match.group(2).split(",")))
    if layer >= shape.n_layers:
        raise ZipfstageError(
            f"--target {text}: the model has layers 0-{shape.n_layers - 1}, not layer {layer}"
        )
    bad = [c for c in channels if c >= shape.hidden_size]
    if bad:
        raise ZipfstageError(
            f"--target {text}: the residual stream has channels 0-{shape.hidden_size - 1}, "
            f"not {', '.join(str(c) for c in bad)}"
        )
    return Target(CHANNELS, (layer,), channels)


def massive_target(massive: Massive) -> Target:
    return Target(MASSIVE, (massive.layer,), massive.channels, tokens="carriers")


def dettmers_target(outliers: dict[str, Any], shape: ModelShape) -> Target | None:
    """Outlier-feature channels of the residual width, at every layer, on all tokens."""
    channels = [
        int(r["channel"])
        for r in outliers.get("dettmers_channels") or []
        if r.get("site") in _MODEL_WIDTH_SITES and 0 <= int(r["channel"]) < shape.hidden_size
    ]
    if not channels:
        return None
    return Target(DETTMERS, tuple(range(shape.n_layers)), tuple(dict.fromkeys(channels)))


def super_weight_targets(
    outliers: dict[str, Any], shape: ModelShape, limit: int | None = None
) -> list[Target]:
    """One target per super-weight candidate (layer, row, column) of the analysis, the largest
    mlp_out spike first; at most `limit` (None: all)."""
    records = sorted(
        outliers.get("super_weights") or [], key=lambda r: -float(r.get("mlp_out_max") or 0.0)
    )
    targets = []
    for record in records[:limit]:
        weight = WeightEdit(int(record["layer"]), int(record["row"]), int(record["column"]))
        if 0 <= weight.layer < shape.n_layers and 0 <= weight.row < shape.hidden_size:
            targets.append(Target(SUPER_WEIGHT, (weight.layer,), weights=(weight,)))
    return targets


def outlier_channels(outliers: dict[str, Any] | None, massive: Massive | None) -> set[int]:
    """Every channel the analysis names (massive, Dettmers, persistent top-1 at a massive point,
    super-weight rows): random controls are drawn from the others."""
    named: set[int] = set(massive.channels) if massive else set()
    if outliers:
        named |= {int(r["channel"]) for r in outliers.get("dettmers_channels") or []}
        named |= {int(r["row"]) for r in outliers.get("super_weights") or []}
        for record in (outliers.get("points") or {}).values():
            top = (record.get("massive") or {}).get("top_channels") or []
            if (record.get("massive") or {}).get("criterion"):
                named |= {int(c) for c in top}
    return named


def control_target(target: Target, seed: int, exclude: set[int], widths: tuple[int, int]) -> Target:
    """The same number of channels (or weights) drawn at random from the channels the analysis
    does not name, at the same layers, with the same token rule. `widths`: (d_model, d_ff)."""
    rng = np.random.default_rng(seed)
    hidden, d_ff = widths
    if target.weights:
        rows = _draw(rng, hidden, len(target.weights), exclude | {w.row for w in target.weights})
        cols = _draw(rng, d_ff, len(target.weights), {w.column for w in target.weights})
        weights = tuple(
            WeightEdit(w.layer, int(r), int(c))
            for w, r, c in zip(target.weights, rows, cols, strict=True)
        )
        return replace(target, weights=weights)
    channels = _draw(rng, hidden, len(target.channels), exclude | set(target.channels))
    return replace(target, channels=tuple(int(c) for c in channels))


def _draw(rng: np.random.Generator, width: int, count: int, exclude: set[int]) -> np.ndarray:
    pool = np.setdiff1d(np.arange(width), np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
    if pool.size < count:
        raise ZipfstageError(
            f"cannot draw {count} control channels: only {pool.size} channels are not outliers"
        )
    return np.sort(rng.choice(pool, size=count, replace=False))

"""What an intervention is, as plain data (numpy-free, torch-free), so targets can be chosen and
checked without a model and the result written as JSON.

An intervention edits the residual stream (block outputs) at some layers and channels, on the
tokens a `TokenRule` selects, and/or zeroes single weights of down projections. The baseline is
the intervention that edits nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["zero", "mean", "typical", "clamp"]
Tokens = Literal["first", "carriers", "all"]
MODES: tuple[str, ...] = ("zero", "mean", "typical", "clamp")
TOKENS: tuple[str, ...] = ("first", "carriers", "all")
#: kinds of rows in ablate.json
BASELINE, MASSIVE, DETTMERS, SUPER_WEIGHT, CHANNELS = (
    "baseline",
    "massive",
    "dettmers",
    "super_weight",
    "channels",
)


@dataclass(frozen=True)
class TokenRule:
    """Which tokens an edit touches: position 0 ("first"), every token ("all"), or the tokens
    whose |h| at any of `carrier_channels` reaches `threshold` at the edited layer, read from the
    hidden state before the edit ("carriers": the tokens that carry the massive activation)."""

    kind: Tokens
    carrier_channels: tuple[int, ...] = ()
    threshold: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChannelEdit:
    """Replace `channels` of block `layer`'s output on the selected tokens.

    zero: by 0; mean / typical: by `values` (one per channel); clamp: into [-v, v], v in `values`.
    """

    layer: int
    channels: tuple[int, ...]
    mode: Mode
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class WeightEdit:
    """Zero W_down[row, column] of block `layer` (row: output channel, column: input channel)."""

    layer: int
    row: int
    column: int


@dataclass(frozen=True)
class Target:
    """What to intervene on, before any value is known: channels at layers, or weights."""

    kind: str
    layers: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    weights: tuple[WeightEdit, ...] = ()
    tokens: Tokens = "all"

    def describe(self) -> str:
        if self.weights:
            return ", ".join(f"layer {w.layer} W[{w.row}, {w.column}]" for w in self.weights)
        where = (
            f"layer {self.layers[0]}"
            if len(self.layers) == 1
            else f"layers {self.layers[0]}-{self.layers[-1]}"
        )
        if len(self.channels) > 4:  # Dettmers' criterion can name dozens
            return f"{where}, {len(self.channels)} channels"
        return f"{where} ch. {', '.join(str(c) for c in self.channels)}"


@dataclass(frozen=True)
class Intervention:
    """One row of the result: a target under one mode, or its random control under one seed."""

    name: str
    kind: str
    target: Target
    mode: Mode = "zero"
    rule: TokenRule = field(default_factory=lambda: TokenRule("all"))
    edits: tuple[ChannelEdit, ...] = ()
    weights: tuple[WeightEdit, ...] = ()
    control_of: str | None = None
    seed: int | None = None

    @property
    def is_baseline(self) -> bool:
        return not self.edits and not self.weights

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target.describe() if self.kind != BASELINE else "none",
            "layers": sorted({e.layer for e in self.edits} | {w.layer for w in self.weights}),
            "channels": sorted({c for e in self.edits for c in e.channels}),
            "weights": [asdict(w) for w in self.weights],
            "mode": self.mode if self.kind != BASELINE else None,
            "tokens": self.rule.kind if self.edits else None,
            "token_rule": self.rule.to_json() if self.edits else None,
            "values": {str(e.layer): list(e.values) for e in self.edits if e.values},
            "control_of": self.control_of,
            "seed": self.seed,
        }

"""From the user's choice and the analysis to the list of interventions ablate runs: targets,
modes, token rules, random controls, and the replacement values each edit needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zipfstage.ablate.spec import (
    BASELINE,
    MASSIVE,
    SUPER_WEIGHT,
    ChannelEdit,
    Intervention,
    Mode,
    Target,
    TokenRule,
    Tokens,
)
from zipfstage.ablate.targets import (
    Massive,
    ModelShape,
    control_target,
    dettmers_target,
    massive_target,
    super_weight_targets,
)
from zipfstage.ablate.values import ChannelStats, NeedKey
from zipfstage.errors import ZipfstageError

#: the modes a massive target runs by default (Sun et al.'s zero and mean, and the spike removed)
MASSIVE_MODES: tuple[Mode, ...] = ("zero", "mean", "typical")


@dataclass(frozen=True)
class Choice:
    """What the user asked for: 'auto', a keyword, or an explicit channel target."""

    target: str | Target
    mode: Mode | None
    tokens: Tokens | None
    max_super_weights: int | None = None


def check_choice(choice: Choice) -> None:
    """Combinations that cannot run, refused before the model is loaded."""
    if choice.target == SUPER_WEIGHT and choice.mode not in (None, "zero"):
        raise ZipfstageError(
            f"--target super_weight zeroes weights; --mode {choice.mode} applies to channels"
        )


def choose_targets(
    choice: Choice,
    outliers: dict[str, Any] | None,
    massive: Massive | None,
    shape: ModelShape,
) -> tuple[list[Target], list[str]]:
    """The targets to run, and notes on what the analysis did not offer."""
    if isinstance(choice.target, Target):
        return [choice.target], []
    outliers = outliers or {}
    found: dict[str, list[Target]] = {
        MASSIVE: [massive_target(massive)] if massive else [],
        "dettmers": [t for t in [dettmers_target(outliers, shape)] if t is not None],
        SUPER_WEIGHT: super_weight_targets(outliers, shape, choice.max_super_weights),
    }
    missing = {
        MASSIVE: "no massive activation (no layer meets Sun et al.'s criterion)",
        "dettmers": "no Dettmers outlier feature of the residual width in outliers.json",
        SUPER_WEIGHT: "no super-weight candidate (none found, or mlp_act and mlp_out not "
        "collected at the same layer)",
    }
    if choice.target != "auto":
        if not found[str(choice.target)]:
            raise ZipfstageError(f"--target {choice.target}: {missing[str(choice.target)]}")
        return found[str(choice.target)], []
    notes = [missing[kind] for kind, targets in found.items() if not targets]
    candidates = len(outliers.get("super_weights") or [])
    if candidates > len(found[SUPER_WEIGHT]) and found[SUPER_WEIGHT]:
        notes.append(
            f"{len(found[SUPER_WEIGHT])} of {candidates} super-weight candidates run (the "
            "largest mlp_out spikes; max_super_weights in the settings)"
        )
    if choice.mode not in (None, "zero") and found[SUPER_WEIGHT]:
        notes.append(f"super-weight candidates are zeroed only, not run under --mode {choice.mode}")
        found[SUPER_WEIGHT] = []
    return [t for targets in found.values() for t in targets], notes


def modes_for(target: Target, choice: Choice) -> tuple[Mode, ...]:
    if target.weights:
        return ("zero",)
    if choice.mode is not None:
        return (choice.mode,)
    return MASSIVE_MODES if target.kind == MASSIVE else ("zero",)


def token_rule(
    target: Target, choice: Choice, massive: Massive | None, sun_abs: float
) -> TokenRule:
    """The tokens an edit touches; carriers are defined by the massive channels at that layer."""
    tokens = choice.tokens or target.tokens
    if tokens != "carriers":
        return TokenRule(tokens)
    if massive is None:
        raise ZipfstageError(
            "--tokens carriers needs a massive activation to say which tokens carry it; "
            "none was found: use --tokens first or all"
        )
    return massive.rule("carriers", sun_abs)


@dataclass
class Plan:
    """Interventions in run order (baseline first) and the values they still need."""

    interventions: list[Intervention] = field(default_factory=list)
    needs: set[NeedKey] = field(default_factory=set)


def plan_interventions(
    targets: list[Target],
    choice: Choice,
    context: tuple[Massive | None, float, int],
    exclude: set[int],
    widths: tuple[int, int],
) -> list[Intervention]:
    """Baseline, then every target x mode with its controls; values not yet filled.

    `context`: (massive, sun_abs, number of control seeds).
    """
    massive, sun_abs, n_controls = context
    planned = [Intervention("baseline", BASELINE, Target(BASELINE))]
    for target in targets:
        rule = token_rule(target, choice, massive, sun_abs)
        for mode in modes_for(target, choice):
            name = f"{target.kind} {mode}" if not target.weights else _weight_name(target)
            planned.append(_intervention(name, target, mode, rule))
            for seed in range(n_controls):
                control = control_target(target, seed, exclude, widths)
                planned.append(
                    _intervention(
                        f"control of {name} (seed {seed})", control, mode, rule, name, seed
                    )
                )
    return planned


def _weight_name(target: Target) -> str:
    w = target.weights[0]
    return f"super_weight layer {w.layer} W[{w.row}, {w.column}]"


def _intervention(
    name: str,
    target: Target,
    mode: Mode,
    rule: TokenRule,
    control_of: str | None = None,
    seed: int | None = None,
) -> Intervention:
    edits = tuple(ChannelEdit(layer, target.channels, mode) for layer in target.layers)
    return Intervention(
        name,
        target.kind,
        target,
        mode,
        rule,
        edits=() if target.weights else edits,
        weights=target.weights,
        control_of=control_of,
        seed=seed,
    )


def value_needs(interventions: list[Intervention]) -> list[NeedKey]:
    """(layer, channels, rule) of every edit whose mode needs values."""
    needs = {
        (edit.layer, edit.channels, i.rule)
        for i in interventions
        for edit in i.edits
        if edit.mode != "zero"
    }
    return sorted(needs, key=lambda n: (n[0], n[1], n[2].kind))


Stored = Callable[[int, tuple[int, ...], TokenRule], tuple[np.ndarray, int] | None]


def fill_values(
    interventions: list[Intervention],
    stats: dict[NeedKey, ChannelStats],
    stored: Stored,
    clamp_quantile: float,
) -> tuple[list[Intervention], dict[str, str]]:
    """Each edit with its values; and where each intervention's values came from."""
    filled, sources = [], {}
    for intervention in interventions:
        edits, used = [], set()
        for edit in intervention.edits:
            if edit.mode == "zero":
                edits.append(edit)
                continue
            values, source = _values(edit, intervention, stats, stored, clamp_quantile)
            edits.append(ChannelEdit(edit.layer, edit.channels, edit.mode, values))
            used.add(source)
        filled.append(_with_edits(intervention, tuple(edits)))
        if used:
            sources[intervention.name] = "; ".join(sorted(used))
    return filled, sources


def _values(
    edit: ChannelEdit,
    intervention: Intervention,
    stats: dict[NeedKey, ChannelStats],
    stored: Stored,
    clamp_quantile: float,
) -> tuple[tuple[float, ...], str]:
    channel_stats = stats[(edit.layer, edit.channels, intervention.rule)]
    if edit.mode == "mean":
        from_store = stored(edit.layer, edit.channels, intervention.rule)
        values, n = from_store if from_store is not None else channel_stats.selected_mean()
        source = "store top-k" if from_store is not None else "collected batches run again"
    elif edit.mode == "typical":
        values, n = channel_stats.typical()
        source = "collected batches run again"
    else:
        values, n = channel_stats.abs_quantile(clamp_quantile)
        source = f"collected batches run again, |h| quantile {clamp_quantile:g}"
    if n == 0 or not np.all(np.isfinite(values)):
        raise ZipfstageError(
            f"{intervention.name}: no collected token at layer {edit.layer} to take the "
            f"{edit.mode} value from (the token rule selects none); try another --tokens"
        )
    return tuple(float(v) for v in values), f"{source} ({n:,} tokens)"


def _with_edits(intervention: Intervention, edits: tuple[ChannelEdit, ...]) -> Intervention:
    from dataclasses import replace

    return replace(intervention, edits=edits)

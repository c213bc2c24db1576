"""A typed view of the store's description: the root attribute "zipfstage" that `collect` writes.

`collect` writes the attribute in steps: at creation (everything but the finishing keys), while it
runs (`collect_seconds`), and when it finalizes (`status`, `n_tokens`, `n_batches`, `finished`).
`RunAttributes.from_dict(d).to_dict() == d` for every attribute dict it wrote; keys this version
does not know are kept in `extra`, so a newer store survives a round trip through an older reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import zarr

from zipfstage.store.layout import ROOT_ATTR, STATUS_COMPLETE, STATUS_RUNNING, StorePlan

#: keys left out of `to_dict()` while they are None or empty (not written, or not yet)
_OPTIONAL = (
    *("config", "config_hash", "store_id", "identity", "model", "data", "versions", "point_layers"),
    *("collect_seconds", "created", "finished", "n_tokens", "n_batches", "layout", "topk"),
    *("channels_by_width", "planned_tokens", "corpus_ended", "attention"),
)


@dataclass(frozen=True)
class RunAttributes:
    """What a run's store says about itself: the collect settings, model, data and progress."""

    schema_version: int
    plan: StorePlan
    points: tuple[str, ...]
    metrics: tuple[str, ...]
    channel_indices: tuple[int, ...] = ()
    status: str = STATUS_RUNNING
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    #: a fresh id per created store (its generation): fits made from another one are stale
    store_id: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    #: decoder layer of each point (-1 for the embedding output)
    point_layers: dict[str, int] = field(default_factory=dict)
    #: top-k columns: {"k_requested": K, "k": {point: k}, "note": ... when K was clamped}
    topk: dict[str, Any] = field(default_factory=dict)
    #: channel_wise's sample per vector width ("576": [...], "1536": [...] for mlp_act)
    channels_by_width: dict[str, list[int]] = field(default_factory=dict)
    collect_seconds: float | None = None
    created: str | None = None
    finished: str | None = None
    n_tokens: int | None = None
    n_batches: int | None = None
    #: "sharded" once `zipfstage compact` (or collect's finish) rewrote the arrays
    layout: str | None = None
    #: tokens --max-tokens asked for, and whether the corpus ended before them (set at the end)
    planned_tokens: int | None = None
    corpus_ended: bool | None = None
    #: attn points and their heads: {"points": {point: heads}, "metrics": [...]}
    attention: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    @property
    def generation(self) -> str:
        """The store's generation as a string: its store_id, or for a store written before ids
        existed, its config hash."""
        return self.store_id or str(self.config_hash)

    def is_generation(self, store_id: object) -> bool:
        """Whether something stamped with `store_id` was made from this store generation."""
        return store_id == self.store_id

    @property
    def model_name(self) -> str:
        return str(self.model.get("name", "unknown model"))

    @classmethod
    def from_dict(cls, info: Mapping[str, Any]) -> RunAttributes:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values: dict[str, Any] = {k: v for k, v in info.items() if k in known}
        values["plan"] = StorePlan(**info["plan"])
        for key in ("points", "metrics", "channel_indices"):
            values[key] = tuple(info.get(key) or ())
        extra = {k: v for k, v in info.items() if k not in known}
        return cls(**values, extra=extra)

    @classmethod
    def from_store(cls, root: zarr.Group) -> RunAttributes:
        """Read the attribute from an open store's root group."""
        return cls.from_dict(cast(Mapping[str, Any], root.attrs[ROOT_ATTR]))

    def to_dict(self) -> dict[str, Any]:
        """The attribute as `collect` writes it (tuples as lists; unset optional keys left out)."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "extra" or (item.name in _OPTIONAL and value in (None, {})):
                continue
            out[item.name] = list(value) if isinstance(value, tuple) else value
        out["plan"] = self.plan.to_json()
        return {**out, **self.extra}

    def replace(self, **changes: Any) -> RunAttributes:
        return dataclasses.replace(self, **changes)

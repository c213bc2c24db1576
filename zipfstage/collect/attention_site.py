"""The `attn` site: per-head attention statistics read where transformers calls attention.

transformers routes every supported architecture's attention through one table,
`AttentionInterface` (`ALL_ATTENTION_FUNCTIONS`), keyed by the implementation the model was loaded
with ("sdpa", "eager", "flash_attention_2", ...). While collecting, `recording` registers a
wrapper under that same key: it calls the function that was there before (for "eager", the
module's own `eager_attention_forward`) with the same arguments and returns its output untouched,
so every other metric is bit-identical with and without `attn`; then it hands the post-RoPE
queries, keys, mask and scaling to `attention_stats`. The model's config is not changed: a new
implementation name would change how transformers builds the mask and, for GPT-2, which branch
runs. The previous entry is restored on exit.

An architecture whose attention does not go through the table (GPT-Neo, Bloom's ALiBi), or
that adds terms the recomputation would miss (learned sink logits, a position bias), is refused
by `check_attention_site` on a few tokens before any store is touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface

from zipfstage.collect.architecture import Architecture
from zipfstage.collect.attention_stats import (
    AttentionCall,
    attention_stats,
    first_content_index,
)
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.points import Point
from zipfstage.collect.sites import site_hook
from zipfstage.errors import ZipfstageError
from zipfstage.records import ATTN_METRICS

Key = tuple[str, str]
AttentionFn = Callable[..., Any]
#: keyword arguments that add a term the recomputation would not see
_UNSUPPORTED_KWARGS = ("position_bias", "s_aux")


class AttentionRecorder:
    """Collects the statistics of the hooked attention modules for one batch at a time.

    `modules` maps each attention module to its point name (`layer_3.attn`). On a GPU the
    results stay on the device until `to_host`, which makes one transfer for all of them.
    """

    def __init__(self, modules: Mapping[nn.Module, str], bos_token_id: int | None) -> None:
        self._points = {id(module): name for module, name in modules.items()}
        self.bos_token_id = bos_token_id
        self._first: torch.Tensor | None = None
        self._results: dict[str, torch.Tensor] = {}

    @property
    def recorded(self) -> set[str]:
        """The points recorded since the last `to_host`."""
        return set(self._results)

    def start_batch(self, input_ids: torch.Tensor) -> None:
        self._first = first_content_index(input_ids, self.bos_token_id)

    def record(
        self,
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: Any,
        kwargs: Mapping[str, Any],
    ) -> None:
        point = self._points.get(id(module))
        if point is None:
            return
        call = attention_call(module, query, mask, kwargs, point)
        first = self._first
        if first is None or first.shape[0] != query.shape[0]:
            first = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        self._results[point] = attention_stats(query, key, call, first.to(query.device))

    def to_host(self) -> dict[Key, np.ndarray]:
        """{(point, metric): [tokens, heads] float32}, and reset for the next batch."""
        results, self._results = self._results, {}
        if not results:
            return {}
        device = next(iter(results.values())).device
        host = torch.stack([r.to(device) for r in results.values()]).cpu().numpy()
        return {
            (point, metric): host[i, j]
            for i, point in enumerate(results)
            for j, metric in enumerate(ATTN_METRICS)
        }


def attention_call(
    module: nn.Module, query: torch.Tensor, mask: Any, kwargs: Mapping[str, Any], point: str
) -> AttentionCall:
    """The scaling, mask rule and softcap one call uses; refuses terms it cannot recompute."""
    extra = [name for name in _UNSUPPORTED_KWARGS if kwargs.get(name) is not None]
    if extra or isinstance(getattr(module, "sinks", None), torch.Tensor):
        what = ", ".join(extra) or "learned sink logits"
        raise ZipfstageError(
            f"{point}: the attention adds {what}, which the attn site cannot recompute exactly; "
            "drop attn from --sites"
        )
    if mask is not None and not isinstance(mask, torch.Tensor):
        raise ZipfstageError(
            f"{point}: the attention mask is a {type(mask).__name__} (flex attention?); the attn "
            "site needs a tensor mask: load the model with sdpa or eager attention"
        )
    scaling = kwargs.get("scaling")
    is_causal = kwargs.get("is_causal")
    return AttentionCall(
        scaling=float(query.shape[-1] ** -0.5 if scaling is None else scaling),
        mask=mask,
        causal=bool(getattr(module, "is_causal", True) if is_causal is None else is_causal),
        sliding_window=kwargs.get("sliding_window"),
        softcap=kwargs.get("softcap"),
    )


def _eager_of(module: nn.Module) -> AttentionFn:
    """The module's own eager attention, which transformers calls for "eager"."""
    function = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if function is None:
        raise ZipfstageError(
            f"{type(module).__name__} has no eager_attention_forward; the attn site cannot wrap "
            "its eager attention: load the model with sdpa attention"
        )
    return function


@contextmanager
def recording(
    backbone: nn.Module, implementation: str, recorder: AttentionRecorder
) -> Iterator[None]:
    """Route the `implementation` entry of the AttentionInterface through `recorder`, and note
    each batch's token ids; restores the table on exit."""
    table: dict[str, AttentionFn] = AttentionInterface._global_mapping  # type: ignore[assignment]
    before: AttentionFn | None = table.get(implementation)
    if implementation != "eager" and before is None:
        raise ZipfstageError(
            f"attention implementation {implementation!r} is not in transformers' "
            "AttentionInterface; the attn site cannot read it"
        )

    def attention(
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: Any,
        **kwargs: Any,
    ) -> Any:
        run = before if before is not None else _eager_of(module)
        output = run(module, query, key, value, attention_mask, **kwargs)
        recorder.record(module, query, key, attention_mask, kwargs)
        return output

    def note_tokens(module: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if isinstance(ids, torch.Tensor):
            recorder.start_batch(ids)

    AttentionInterface.register(implementation, attention)
    handle = backbone.register_forward_pre_hook(note_tokens, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
        if before is None:
            table.pop(implementation, None)
        else:
            AttentionInterface.register(implementation, before)


def implementation_of(architecture: Architecture) -> str:
    """The attention implementation the model was loaded with ("sdpa", "eager", ...)."""
    return str(getattr(architecture.config, "_attn_implementation", None) or "eager")


@contextmanager
def attention_points(
    architecture: Architecture, points: list[Point], bos_token_id: int | None
) -> Iterator[AttentionRecorder]:
    """A recorder for the attn points among `points`, installed while the context lasts (a
    recorder that records nothing, and no change to transformers, when there are none)."""
    wanted = [p for p in points if p.is_attention]
    modules = {site_hook(architecture, p.depth, p.site).module: p.name for p in wanted}
    recorder = AttentionRecorder(modules, bos_token_id)
    if not wanted:
        yield recorder
        return
    with recording(architecture.backbone, implementation_of(architecture), recorder):
        yield recorder


def check_attention_site(
    architecture: Architecture, points: list[Point], tokens: torch.Tensor, bos: int | None
) -> None:
    """Run the attn points once on a few tokens; refuse (one line) a layer whose attention
    never reached the AttentionInterface, or used something the recomputation cannot."""
    wanted = [p for p in points if p.is_attention]
    if not wanted:
        return
    with (
        attention_points(architecture, wanted, bos) as recorder,
        point_hooks(architecture, wanted, lambda point, hidden: None),
        torch.inference_mode(),
    ):
        run_until_last_point(architecture, tokens)
        recorded = recorder.recorded
    missing = [p.name for p in wanted if p.name not in recorded]
    if missing:
        name = architecture.model_type or type(architecture.backbone).__name__
        raise ZipfstageError(
            f"{name}: the attention of {missing[0]} does not go through transformers' "
            "AttentionInterface, so the attn site cannot recompute it exactly; "
            "drop attn from --sites"
        )

"""Forward hooks that hand each collection point's hidden state to a callback.

Hooks live inside a context manager that always removes them. The hook at the deepest point (the
last one the forward pass reaches, `max(points)`) raises `StopForward`, so the rest of that
block, the blocks after it, the final norm and the LM head are never computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from zipfstage.collect.architecture import Architecture
from zipfstage.collect.points import EMBED_DEPTH, Point
from zipfstage.collect.sites import SiteHook, site_hook

HiddenCallback = Callable[[Point, torch.Tensor], None]


class StopForward(Exception):
    """Raised by the last needed hook to skip the rest of the model."""


def _first_tensor(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[0]


def _first_input(args: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    if args:
        return _first_tensor(args[0])
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    return next(v for v in kwargs.values() if isinstance(v, torch.Tensor))


def hook_for(architecture: Architecture, point: Point) -> SiteHook:
    """The module and side (input or output) that carries a point."""
    if point.depth == EMBED_DEPTH:
        return SiteHook(architecture.blocks[0], from_input=True, width=architecture.hidden_size)
    return site_hook(architecture, point.depth, point.site)


@contextmanager
def point_hooks(
    architecture: Architecture, points: list[Point], callback: HiddenCallback
) -> Iterator[None]:
    """Register one hook per point; the deepest one stops the forward pass."""
    deepest = max(points)
    handles: list[RemovableHandle] = []

    def make_hook(point: Point, from_input: bool) -> Callable[..., None]:
        def hook(module: Any, args: Any, *rest: Any) -> None:
            hidden = _first_input(args, rest[0]) if from_input else _first_tensor(rest[-1])
            callback(point, hidden)
            if point == deepest:
                raise StopForward

        return hook

    try:
        for point in points:
            where = hook_for(architecture, point)
            if where.from_input:
                handle = where.module.register_forward_pre_hook(
                    make_hook(point, True), with_kwargs=True
                )
            else:
                handle = where.module.register_forward_hook(make_hook(point, False))
            handles.append(handle)
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_until_last_point(architecture: Architecture, input_ids: torch.Tensor) -> None:
    """Run the backbone (never the LM head) until the deepest hooked point has fired."""
    try:
        architecture.backbone(input_ids=input_ids, use_cache=False)
    except StopForward:
        return

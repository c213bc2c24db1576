"""Forward hooks that hand each collection point's hidden state to a callback.

Hooks live inside a context manager that always removes them. The hook at the deepest point raises
`StopForward`, so the blocks after it, the final norm and the LM head are never computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from zipfstage.collect.architecture import Architecture
from zipfstage.collect.points import EMBED_DEPTH, Point

HiddenCallback = Callable[[Point, torch.Tensor], None]


class StopForward(Exception):
    """Raised by the last needed hook to skip the rest of the model."""


def _first_tensor(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[0]


@contextmanager
def point_hooks(
    architecture: Architecture, points: list[Point], callback: HiddenCallback
) -> Iterator[None]:
    """Register one hook per point; the deepest one stops the forward pass."""
    deepest = max(points)
    handles: list[RemovableHandle] = []

    def make_hook(point: Point, from_input: bool) -> Callable[..., None]:
        def hook(module: Any, args: Any, *rest: Any) -> None:
            if from_input:
                kwargs = rest[0]
                hidden = args[0] if args else kwargs["hidden_states"]
            else:
                hidden = _first_tensor(rest[-1])
            callback(point, hidden)
            if point == deepest:
                raise StopForward

        return hook

    try:
        for point in points:
            if point.depth == EMBED_DEPTH:
                block = architecture.blocks[0]
                handles.append(
                    block.register_forward_pre_hook(make_hook(point, True), with_kwargs=True)
                )
            else:
                block = architecture.blocks[point.depth]
                handles.append(block.register_forward_hook(make_hook(point, False)))
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

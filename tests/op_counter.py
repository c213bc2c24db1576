"""Count the PyTorch operations a piece of code dispatches, to measure the device path on a CPU.

On a GPU every aten operation that computes something is at least one kernel launch (a few
microseconds each, whatever its size), so the count of operations per batch is what decides
whether the reduction keeps up with the forward. `TorchDispatchMode` sees every operation below
autograd, on any device, so the GPU path's count can be measured on the CPU device.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched inside the `with` block, by name.

    `total` counts all of them; `launches` leaves out views and metadata-only operations
    (reshape, select, slice, ...), which make no kernel launch on a GPU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.views: Counter[str] = Counter()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        name = str(func.overloadpacket.__name__)
        self.ops[name] += 1
        if _is_view(func):
            self.views[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def launches(self) -> int:
        return self.total - sum(self.views.values())


def _is_view(func: Any) -> bool:
    """An aten view (its output aliases its input) or an op that reads only metadata."""
    schema = func._schema
    aliased = any(
        ret.alias_info is not None and not ret.alias_info.is_write for ret in schema.returns
    )
    return aliased or func.overloadpacket in _METADATA


_METADATA = {torch.ops.aten.sym_size, torch.ops.aten.sym_stride, torch.ops.aten.is_nonzero}

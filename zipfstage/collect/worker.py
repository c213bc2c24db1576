"""The worker loop: forward each assigned batch, reduce it to metrics, write it behind the next.

Every strategy runs this same loop; they differ only in which batches a process is assigned. A
batch is committed after its data is on disk, so a kill loses at most the batch in flight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from zipfstage.collect.attention_site import attention_points
from zipfstage.collect.hooks import point_hooks, run_until_last_point
from zipfstage.collect.host_memory import keep_freed_memory
from zipfstage.collect.plan import PreparedRun
from zipfstage.collect.points import Point
from zipfstage.collect.reducer import MetricReducer
from zipfstage.collect.write_behind import WriteBehind
from zipfstage.progress import Advance
from zipfstage.store import StoreWriter


def positions_for(batch: np.ndarray) -> np.ndarray:
    rows, seq_len = batch.shape
    return np.tile(np.arange(seq_len, dtype=np.int32), rows)


def hidden_only(reducer: MetricReducer) -> Callable[[Point, torch.Tensor], None]:
    """The reducer's callback for hidden-state points; an attn point's hook only marks where
    its attention module ended (its statistics are recorded inside it)."""

    def callback(point: Point, hidden: torch.Tensor) -> None:
        if not point.is_attention:
            reducer(point, hidden)

    return callback


def collect_batches(
    run: PreparedRun,
    writer: StoreWriter,
    advance: Advance,
    stop_requested: Callable[[], bool],
    assigned: Callable[[int], bool] = lambda batch: True,
    compile_reduction: bool = False,
) -> int | None:
    """Forward and write every assigned, uncommitted batch.

    Returns how many batches the data holds, or None when stopped early on request.
    `compile_reduction` compiles the device path's per-width reduction (benchmarks/).
    """
    committed = writer.committed()
    reducer = MetricReducer(
        run.shape.metrics,
        run.channels_by_width,
        run.settings.topk,
        run.settings.hill_k,
        compile_reduction=compile_reduction,
    )
    architecture, device = run.loaded.architecture, run.loaded.device
    if device.type == "cpu":
        keep_freed_memory()  # the forward's activations would page-fault in afresh every batch
    seen = 0
    bos = run.loaded.tokenizer.bos_token_id
    with (
        attention_points(architecture, run.points, bos) as attention,
        point_hooks(architecture, run.points, hidden_only(reducer)),
        torch.inference_mode(),
        WriteBehind(writer, advance, in_background=device.type != "cpu") as write_behind,
    ):
        for batch_index, batch in enumerate(run.batches()):
            seen = batch_index + 1
            if committed[batch_index]:  # the source must still give the batch the store holds
                writer.verify_batch(batch_index, batch.ravel())
            if committed[batch_index] == batch.size or not assigned(batch_index):
                continue
            run_until_last_point(architecture, torch.from_numpy(batch).to(device))
            values = reducer.to_host()
            values.update(attention.to_host())
            write_behind.submit(batch_index, batch.ravel(), positions_for(batch), values)
            if stop_requested():
                write_behind.wait()
                return None
    return seen

"""The single-process strategy: this process loads the model and writes every pending batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zipfstage.collect.coordinator import coordinate, stop_requests
from zipfstage.collect.outcome import CollectOutcome
from zipfstage.collect.placement import Placement, use_device
from zipfstage.collect.plan import PreparedRun, prepare_run
from zipfstage.collect.worker import collect_batches
from zipfstage.config import CollectSettings
from zipfstage.progress import Advance
from zipfstage.store import StoreWriter


@dataclass
class InProcess:
    """`Work` for one process: it holds the model, so it saves the tokenizer and does it all."""

    prepared: PreparedRun
    stop_requested: Callable[[], bool]
    label: str = "collect"

    def save_tokenizer(self, out_dir: Path) -> None:
        self.prepared.save_tokenizer(out_dir)

    def run(self, writer: StoreWriter, pending: list[int], advance: Advance) -> int | None:
        share = set(pending)
        return collect_batches(
            self.prepared, writer, advance, self.stop_requested, assigned=share.__contains__
        )


def run_single(
    settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool, placement: Placement
) -> CollectOutcome:
    """Validate and load here, then the whole coordinator sequence in this process."""
    use_device(placement)
    run = prepare_run(settings, out_dir, placement)
    spec = run.spec()
    with stop_requests() as stop_requested:
        work = InProcess(run, stop_requested)
        return coordinate(spec, settings, out_dir, overwrite, quiet, work)

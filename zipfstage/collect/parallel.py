"""Data parallel collect on one machine: one spawned worker process per device, one shared store.

The parent never loads the model. Each worker loads its own replica and reports the store it would
write; the parent checks that all agree and runs the coordinator, which deals the *pending* batches
round-robin, so a resume works with any worker count. Every batch lands in its own chunks and the
workers never write metadata, so they need no coordination while writing; the parent alone
finalizes. Workers send token counts for the one progress bar, and die with the parent (they watch
its sentinel).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from zipfstage.collect.coordinator import agreed_batch_count, coordinate, share_of, stop_requests
from zipfstage.collect.messages import Abort, Done, Failed, Go, Ready, Tokens, WorkerMessage
from zipfstage.collect.models import hide_transformers_progress, transformers_progress_shown
from zipfstage.collect.outcome import CollectOutcome
from zipfstage.collect.placement import check_devices, place, use_device
from zipfstage.collect.plan import prepare_run, validate_settings
from zipfstage.collect.spec import StoreSpec, check_same_store
from zipfstage.collect.worker import collect_batches
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance
from zipfstage.store import StoreWriter, store_path

POLL_SECONDS = 0.2
RESUME_HINT = "committed batches are kept: re-run the same command to resume"


class WorkerFailed(ZipfstageError):
    """A worker died or crashed; not the user's input, so exit 1 rather than 2."""

    exit_code = 1


def threads_per_worker(n_workers: int, available: int | None = None) -> int:
    """This process's intra-op threads split between the workers, so they don't oversubscribe."""
    total = available if available is not None else torch.get_num_threads()
    return max(1, total // max(1, n_workers))


def run_parallel(
    settings: CollectSettings, out_dir: Path, overwrite: bool, quiet: bool
) -> CollectOutcome:
    """Collect with one worker per entry of `settings.devices`."""
    validate_settings(settings, out_dir)  # cheap input errors before any process starts
    devices = check_devices(settings)
    threads = threads_per_worker(len(devices))
    with (
        stop_requests() as stop_requested,
        WorkerPool(settings, out_dir, devices, threads, stop_requested) as pool,
    ):
        spec = pool.wait_ready()
        return coordinate(spec, settings, out_dir, overwrite, quiet, pool)


class WorkerPool:
    """The spawned workers, their queues, and the parent's side of the protocol (`messages`).

    It is the coordinator's `Work`: worker 0 saves the tokenizer (the parent holds none).
    """

    label = "collect"

    def __init__(
        self,
        settings: CollectSettings,
        out_dir: Path,
        devices: list[str],
        threads: int,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.devices = devices
        self.stop_requested = stop_requested
        ctx = mp.get_context("spawn")
        self.inbox: Any = ctx.Queue()
        self.orders: list[Any] = [ctx.Queue() for _ in devices]
        self.stop = ctx.Event()
        launch = WorkerLaunch(settings, out_dir, threads, transformers_progress_shown())
        self.processes = [
            ctx.Process(
                target=worker_main,
                name=f"zipfstage-collect-{i}",
                daemon=True,
                args=(i, launch, self.inbox, self.orders[i], self.stop),
            )
            for i in range(len(devices))
        ]
        self.finished: dict[int, int | None] = {}

    def __enter__(self) -> WorkerPool:
        for process in self.processes:
            process.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop everyone: at a batch boundary when all went well, at once otherwise."""
        self.stop.set()
        for order in self.orders:
            order.put(Abort())
        grace = 30.0 if kind is None else 0.0
        for process in self.processes:
            process.join(grace)
            if process.is_alive():
                process.terminate()
                process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        for q in (self.inbox, *self.orders):
            q.close()
            q.cancel_join_thread()

    def name(self, index: int) -> str:
        return f"worker {index} on {self.devices[index]}"

    def wait_ready(self) -> StoreSpec:
        """Every worker's store spec, checked to be the same store; raises on any failure."""
        specs: dict[int, StoreSpec] = {}
        while len(specs) < len(self.processes):
            if self.stop_requested():
                raise KeyboardInterrupt
            for message in self._receive():
                if isinstance(message, Ready):
                    specs[message.sender] = message.spec
            self._check_alive(waiting_for=set(range(len(self.processes))) - set(specs))
        return check_same_store([specs[i] for i in range(len(specs))], self.name)

    def save_tokenizer(self, out_dir: Path) -> None:
        """Nothing here: the parent holds no tokenizer, worker 0 saves it when dealt its share."""

    def run(self, writer: StoreWriter, pending: list[int], advance: Advance) -> int | None:
        """Deal the pending batches round-robin, then relay progress until every worker is done."""
        count = len(self.processes)
        for index, order in enumerate(self.orders):
            order.put(Go(share_of(pending, index, count), save_tokenizer=index == 0))
        while len(self.finished) < count:
            if self.stop_requested():
                self.stop.set()
            for message in self._receive():
                if isinstance(message, Tokens):
                    advance(message.count)
            self._check_alive(waiting_for=set(range(count)) - set(self.finished))
        return agreed_batch_count(self.finished.values(), "workers")

    def _receive(self, timeout: float = POLL_SECONDS) -> list[WorkerMessage]:
        """Messages waiting now (blocking up to `timeout` for the first); acts on Done, Failed."""
        messages: list[WorkerMessage] = []
        try:
            messages.append(self.inbox.get(timeout=timeout))
            while True:
                messages.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        for message in messages:
            if isinstance(message, Done):
                self.finished[message.sender] = message.n_batches
            elif isinstance(message, Failed):
                if message.exit_code == WorkerFailed.exit_code:
                    name = self.name(message.sender)
                    raise WorkerFailed(f"{name} failed: {message.text}; {RESUME_HINT}")
                raise ZipfstageError(message.text)
        return messages

    def _check_alive(self, waiting_for: set[int]) -> None:
        """A worker that exited without finishing stops the run (its last words are read first)."""
        for index in sorted(waiting_for):
            process = self.processes[index]
            if process.exitcode is None:
                continue
            self._receive(timeout=1.0)  # a worker's queue is flushed before it exits
            if index not in self.finished:
                raise WorkerFailed(
                    f"{self.name(index)} died (exit {process.exitcode}); {RESUME_HINT}"
                )


@dataclass(frozen=True)
class WorkerLaunch:
    """What every worker is started with (picklable)."""

    settings: CollectSettings
    out_dir: Path
    threads: int
    show_hf_progress: bool  # the parent's choice, which a fresh (spawned) process must repeat


def worker_main(index: int, launch: WorkerLaunch, to_parent: Any, orders: Any, stop: Any) -> None:
    """One worker process: load a replica, report its store spec, write the batches it is dealt."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which sets `stop`
    exit_with_parent()
    torch.set_num_threads(launch.threads)
    if not launch.show_hf_progress:  # this process's entry point: follow the parent's CLI
        hide_transformers_progress()
    try:
        placement = place(launch.settings, index)
        use_device(placement)
        run = prepare_run(launch.settings, launch.out_dir, placement)
        to_parent.put(Ready(index, run.spec()))
        order = orders.get()
        if not isinstance(order, Go):
            return
        if order.save_tokenizer:
            run.save_tokenizer(launch.out_dir)
        writer = StoreWriter(store_path(launch.out_dir))
        share = set(order.batches)

        def advance(amount: float = 1) -> None:
            to_parent.put(Tokens(index, int(amount)))

        n_batches = collect_batches(run, writer, advance, stop.is_set, share.__contains__)
        to_parent.put(Done(index, n_batches))
    except Exception as exc:
        to_parent.put(Failed.from_exception(index, exc, WorkerFailed.exit_code))
        if isinstance(exc, ZipfstageError):
            sys.exit(exc.exit_code)
        raise


def exit_with_parent() -> None:
    """Exit at once when the parent dies (even by SIGKILL), so no orphan keeps writing."""
    parent = mp.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="zipfstage-parent-watch", daemon=True).start()

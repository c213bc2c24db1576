"""Data parallel collect on one machine: one spawned worker process per device, one shared store.

The parent never loads the model. Each worker loads its own replica and reports the store it would
write; the parent checks that all agree, takes the run directory's lock, creates (or checks) the
store, and deals the *pending* batches round-robin, so a resume works with any worker count. Every
batch lands in its own chunks and the workers never write metadata, so they need no coordination
while writing; the parent alone finalizes. Workers send token counts over a queue for the one
progress bar, and die with the parent (they watch its sentinel).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from zipfstage.collect.models import pick_device
from zipfstage.collect.runner import (
    CollectOutcome,
    StoreSpec,
    collect_batches,
    describe_changes,
    open_session,
    pending_batches,
    prepare_run,
    save_tokenizer,
    share_of,
    stop_requests,
    validate_settings,
)
from zipfstage.config import CollectSettings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import Advance, progress_bar
from zipfstage.store import StoreWriter, store_path
from zipfstage.store.lock import exclusive_lock

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
    devices = list(settings.devices or [])
    for device in devices:
        pick_device(device)
    threads = threads_per_worker(len(devices))
    with stop_requests() as stop_requested, WorkerPool(settings, out_dir, devices, threads) as pool:
        spec = pool.wait_ready(stop_requested)
        out_dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(out_dir):
            session = open_session(spec, settings, out_dir, overwrite)
            if isinstance(session, CollectOutcome):
                return session
            writer = StoreWriter(session.path)
            pool.start(pending_batches(writer))
            with progress_bar(
                "collect", session.total_tokens, "tok", session.done_tokens, quiet=quiet
            ) as advance:
                n_batches = pool.supervise(advance, stop_requested)
            new_tokens = int(writer.committed().sum()) - session.done_tokens
            return session.finish(n_batches, new_tokens)


class WorkerPool:
    """The spawned workers, their queues, and the parent's side of the protocol.

    worker -> parent: ("ready", i, StoreSpec) | ("tokens", i, n) | ("done", i, n_batches or None)
                      | ("error", i, message, exit_code)
    parent -> worker: ("go", share, save_tokenizer) | ("abort",)
    """

    def __init__(
        self, settings: CollectSettings, out_dir: Path, devices: list[str], threads: int
    ) -> None:
        self.devices = devices
        ctx = mp.get_context("spawn")
        self.inbox: Any = ctx.Queue()
        self.orders: list[Any] = [ctx.Queue() for _ in devices]
        self.stop = ctx.Event()
        self.processes = [
            ctx.Process(
                target=worker_main,
                name=f"zipfstage-collect-{i}",
                daemon=True,
                args=(i, device, settings, out_dir, threads, self.inbox, self.orders[i], self.stop),
            )
            for i, device in enumerate(devices)
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
            order.put(("abort",))
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

    def wait_ready(self, stop_requested: Callable[[], bool]) -> StoreSpec:
        """Every worker's store spec, checked to be the same store; raises on any failure."""
        specs: dict[int, StoreSpec] = {}
        while len(specs) < len(self.processes):
            if stop_requested():
                raise KeyboardInterrupt
            for message in self._receive():
                if message[0] == "ready":
                    specs[message[1]] = message[2]
            self._check_alive(waiting_for=set(range(len(self.processes))) - set(specs))
        first = specs[0]
        for index, spec in specs.items():
            if spec.config_hash != first.config_hash:
                changed = describe_changes(first.identity, spec.identity)
                raise ZipfstageError(
                    f"{self.name(index)} would write a different store than {self.name(0)} "
                    f"({changed}); use one kind of device or set --dtype"
                )
        return first

    def start(self, pending: list[int]) -> None:
        """Deal the pending batches round-robin; worker 0 also saves the tokenizer."""
        count = len(self.processes)
        for index, order in enumerate(self.orders):
            order.put(("go", share_of(pending, index, count), index == 0))

    def supervise(self, advance: Advance, stop_requested: Callable[[], bool]) -> int | None:
        """Relay progress until every worker is done; the data's batch count, None if stopped."""
        while len(self.finished) < len(self.processes):
            if stop_requested():
                self.stop.set()
            for message in self._receive():
                if message[0] == "tokens":
                    advance(message[2])
            self._check_alive(waiting_for=set(range(len(self.processes))) - set(self.finished))
        results = list(self.finished.values())
        if any(n is None for n in results):
            return None
        counts = {n for n in results if n is not None}
        if len(counts) != 1:
            raise WorkerFailed(f"workers disagree on the number of batches ({sorted(counts)})")
        return counts.pop()

    def _receive(self, timeout: float = POLL_SECONDS) -> list[tuple[Any, ...]]:
        """Messages waiting now (blocking up to `timeout` for the first); handles done and error."""
        messages: list[tuple[Any, ...]] = []
        try:
            messages.append(self.inbox.get(timeout=timeout))
            while True:
                messages.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        for message in messages:
            if message[0] == "done":
                self.finished[message[1]] = message[2]
            elif message[0] == "error":
                _, index, text, code = message
                if code == WorkerFailed.exit_code:
                    raise WorkerFailed(f"{self.name(index)} failed: {text}; {RESUME_HINT}")
                raise ZipfstageError(text)
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


def worker_main(
    index: int,
    device: str,
    settings: CollectSettings,
    out_dir: Path,
    threads: int,
    to_parent: Any,
    orders: Any,
    stop: Any,
) -> None:
    """One worker: load a replica, report the store spec, then write the batches it is dealt."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which sets `stop`
    exit_with_parent()
    torch.set_num_threads(threads)
    try:
        run = prepare_run(settings, out_dir, device=device)
        to_parent.put(("ready", index, run.spec()))
        order = orders.get()
        if order[0] != "go":
            return
        _, share, keep_tokenizer = order
        if keep_tokenizer:
            save_tokenizer(run, out_dir)
        writer = StoreWriter(store_path(out_dir))
        mine = set(share)

        def advance(amount: float = 1) -> None:
            to_parent.put(("tokens", index, int(amount)))

        n_batches = collect_batches(run, writer, advance, stop.is_set, assigned=mine.__contains__)
        to_parent.put(("done", index, n_batches))
    except ZipfstageError as exc:
        to_parent.put(("error", index, str(exc), exc.exit_code))
        sys.exit(exc.exit_code)
    except Exception as exc:
        to_parent.put(("error", index, f"{type(exc).__name__}: {exc}", WorkerFailed.exit_code))
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

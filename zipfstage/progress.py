"""Rich progress bars for long work, in one style for every stage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class Advance(Protocol):
    def __call__(self, amount: float = 1) -> None: ...


class RateColumn(ProgressColumn):
    """Items per second, e.g. '12,345 tok/s'."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"? {self.unit}/s", style="cyan")


def _new_progress(unit: str, console: Console | None, quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
        disable=quiet,
    )


@contextmanager
def progress_bar(
    description: str,
    total: float,
    unit: str = "it",
    completed: float = 0,
    console: Console | None = None,
    quiet: bool = False,
) -> Iterator[Advance]:
    """A bar with count, rate and ETA; yields a function that advances it."""
    progress = _new_progress(unit, console, quiet)
    with progress, _vanishing_on_error(progress):
        task = progress.add_task(description, total=total, completed=int(completed))

        def advance(amount: float = 1) -> None:
            progress.advance(task, amount)

        yield advance


@contextmanager
def _vanishing_on_error(progress: Progress) -> Iterator[None]:
    """A bar cut short by an error is cleared, so the error is the one line left."""
    try:
        yield
    except BaseException:
        progress.live.transient = True
        raise


@contextmanager
def counting_bar(
    description: str, unit: str = "it", console: Console | None = None, quiet: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """The same bar for work whose total is known only once it starts; yields update(done, total).

    The bar appears at the first update, so an error raised before the work starts is the only
    line printed.
    """
    progress = _new_progress(unit, console, quiet)
    tasks: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if not tasks:
            progress.start()
            tasks.append(progress.add_task(description, total=total))
        progress.update(tasks[0], completed=done, total=total)

    try:
        with _vanishing_on_error(progress):
            yield update
    finally:
        if tasks:
            progress.stop()

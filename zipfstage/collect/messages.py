"""The messages worker processes and torchrun ranks exchange with their coordinator.

worker -> coordinator: Ready (the store it would write), Tokens (progress), Done, Failed.
coordinator -> worker: Go (its share of the pending batches), Abort, or AlreadyDone (torchrun:
the store was complete already). All are small, frozen and picklable.
"""

from __future__ import annotations

from dataclasses import dataclass

from zipfstage.collect.outcome import CollectOutcome
from zipfstage.collect.spec import StoreSpec
from zipfstage.errors import ZipfstageError


@dataclass(frozen=True)
class Ready:
    sender: int
    spec: StoreSpec


@dataclass(frozen=True)
class Tokens:
    sender: int
    count: int


@dataclass(frozen=True)
class Done:
    sender: int
    n_batches: int | None  # None: stopped on request before the end of the data


@dataclass(frozen=True)
class Failed:
    sender: int
    text: str
    exit_code: int

    @classmethod
    def from_exception(
        cls, sender: int, exc: BaseException, crash_code: int, crash_prefix: str = ""
    ) -> Failed:
        """Our own errors keep their text and code; anything else is a crash, named as such."""
        if isinstance(exc, ZipfstageError):
            return cls(sender, str(exc), exc.exit_code)
        return cls(sender, f"{crash_prefix}{type(exc).__name__}: {exc}", crash_code)

    @property
    def is_user_error(self) -> bool:
        return self.exit_code == ZipfstageError.exit_code


@dataclass(frozen=True)
class Go:
    batches: list[int]
    save_tokenizer: bool = False


@dataclass(frozen=True)
class Abort:
    pass


@dataclass(frozen=True)
class AlreadyDone:
    outcome: CollectOutcome


WorkerMessage = Ready | Tokens | Done | Failed
Order = Go | Abort | AlreadyDone | Failed

"""What a collect invocation reports back: the public result of `run_collect`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

COMPLETE = "complete"
ALREADY_COMPLETE = "already_complete"
STOPPED = "stopped"


@dataclass(frozen=True)
class CollectOutcome:
    store: Path
    status: str  # "complete", "already_complete" or "stopped"
    n_tokens: int
    new_tokens: int
    seconds: float
    coordinator: bool = True  # False on torchrun ranks other than 0: they report nothing
    #: what --max-tokens asked for (rounded down to whole sequences); 0 when not known
    planned_tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else math.nan

    @property
    def corpus_ended(self) -> bool:
        """The data ran out before --max-tokens: a finished run holds fewer tokens than planned."""
        return self.status != STOPPED and 0 < self.n_tokens < self.planned_tokens

    def tokens_line(self) -> str:
        """'152,832 of 1,000,000 planned tokens' when the corpus ended early, else '152,832
        tokens'."""
        if self.corpus_ended:
            return f"{self.n_tokens:,} of {self.planned_tokens:,} planned tokens"
        return f"{self.n_tokens:,} tokens"

    @property
    def ended_note(self) -> str:
        """': the corpus ended' when it did (the summary line's tail), else nothing."""
        return ": the corpus ended" if self.corpus_ended else ""

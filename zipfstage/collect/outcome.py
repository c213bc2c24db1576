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

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else math.nan

"""The one shape every stage returns, so `demo` and the commands treat fit, plot and report alike.

Each stage module has `run(settings_section, run_dir, progress=None) -> StageResult`, where
`progress(done, total)` is called as work completes (None: silent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: progress(done, total): called as a stage's work completes
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StageResult:
    """What a stage did: a one-line summary, notes worth a line each, what it wrote, how long."""

    stage: str
    summary: str
    outputs: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    counts: Mapping[str, int] = field(default_factory=dict)

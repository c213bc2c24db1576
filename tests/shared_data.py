"""Where the shared data sets live: `shared/` beside the checkout (or beside the folder of
worktrees that holds it), or ZIPFSTAGE_SHARED. Tests that need them skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The first `shared` folder found above the checkout (a worktree sits one level deeper)."""
    if os.environ.get("ZIPFSTAGE_SHARED"):
        return Path(os.environ["ZIPFSTAGE_SHARED"])
    for parent in (_ROOT.parent, _ROOT.parent.parent):
        if (parent / "shared").is_dir():
            return parent / "shared"
    return _ROOT.parent / "shared"


def reference_data(name: str) -> np.ndarray:
    """One of the power-law literature's data sets (`shared/reference-data/<name>.txt`)."""
    path = shared_dir() / "reference-data" / f"{name}.txt"
    if not path.exists():
        pytest.skip(f"reference data not present at {path}")
    return np.loadtxt(path)

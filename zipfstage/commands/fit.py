"""`zipfstage fit` (being built)."""

from __future__ import annotations

from zipfstage.commands.common import abort


def fit_command() -> None:
    """Not built yet."""
    raise abort("fit is not built yet")

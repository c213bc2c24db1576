"""`zipfstage plot` (being built)."""

from __future__ import annotations

from zipfstage.commands.common import abort


def plot_command() -> None:
    """Not built yet."""
    raise abort("plot is not built yet")

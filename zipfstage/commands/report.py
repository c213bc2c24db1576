"""`zipfstage report` (being built)."""

from __future__ import annotations

from zipfstage.commands.common import abort


def report_command() -> None:
    """Not built yet."""
    raise abort("report is not built yet")

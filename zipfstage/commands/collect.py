"""`zipfstage collect` (being built)."""

from __future__ import annotations

from zipfstage.commands.common import abort


def collect_command() -> None:
    """Not built yet."""
    raise abort("collect is not built yet")

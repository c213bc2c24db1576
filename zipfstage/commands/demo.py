"""`zipfstage demo` (being built)."""

from __future__ import annotations

from zipfstage.commands.common import abort


def demo_command() -> None:
    """Not built yet."""
    raise abort("demo is not built yet")

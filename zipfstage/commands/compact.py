"""`zipfstage compact`: rewrite a finished store as a few shard files per array."""

from __future__ import annotations

from zipfstage.commands.common import (
    ConfigOption,
    OutOption,
    cli_errors,
    console,
    load_settings,
)
from zipfstage.progress import counting_bar
from zipfstage.store.compact import compact_store, require_complete_store
from zipfstage.store.layout import store_path
from zipfstage.store.lock import exclusive_lock, replacing_lock


@cli_errors
def compact_command(config: ConfigOption = None, out: OutOption = None) -> None:
    """Shard a complete store (same values, O(arrays) files: fast to copy); safe to interrupt."""
    settings = load_settings(config, out)
    path = store_path(settings.out)
    require_complete_store(path)  # refuse before taking the lock, so nothing is written
    bar = counting_bar("compact", unit="arrays", console=console)
    with exclusive_lock(settings.out), replacing_lock(settings.out), bar as progress:
        result = compact_store(path, progress=progress)
    if result.already_compacted:
        console.print(f"{path} is already compacted ({result.files_after:,} files)")
        return
    console.print(
        f"compacted {result.arrays} arrays in {result.seconds:.1f} s: "
        f"{result.files_before:,} -> {result.files_after:,} files in {path}",
        highlight=False,
    )

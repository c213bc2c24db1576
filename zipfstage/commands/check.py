"""`zipfstage check`: verify every committed batch of the store and name what is damaged."""

from __future__ import annotations

from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, console, load_settings
from zipfstage.errors import ZipfstageError
from zipfstage.progress import counting_bar
from zipfstage.store.integrity import check_store, repair_advice
from zipfstage.store.lock import reading_lock
from zipfstage.store.reader import open_store


@cli_errors
def check_command(config: ConfigOption = None, out: OutOption = None) -> None:
    """Verify metadata, progress, every chunk's checksums and token digests (slow: reads all)."""
    settings = load_settings(config, out)
    with reading_lock(settings.out):
        store = open_store(settings.out, verify=False)
        with counting_bar("check", unit="arrays", console=console) as progress:
            result = check_store(store.path, store.root, store.plan, store.info, progress)
    for damage in result.damage:
        console.print(f"{store.path}/{damage.describe()}", highlight=False, soft_wrap=True)
    if result.damage:
        advice = repair_advice(result.found, store.compacted, settings.out)
        count = f"{len(result.damage)} of {result.arrays} arrays are damaged"
        raise ZipfstageError(f"{count}: {advice}")
    console.print(
        f"{store.path}: {result.batches:,} committed batches of {result.arrays} arrays are whole "
        "and match their checksums",
        highlight=False,
    )

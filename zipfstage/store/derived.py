"""Results derived from a store and saved beside it as JSON (outliers.json, ablate.json).

Each carries the store_id and token count it was made from; a reader treats one made from
another store state as missing, and says which command makes it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zipfstage.errors import ZipfstageError
from zipfstage.store.reader import open_store


def read_derived(
    run_dir: Path, path: Path, key: str, kind: str, command: str, default_tokens: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None) when current; (None, why) when unreadable, not a `kind` (no `key` of the
    right type) or made from another store state; (None, None) when there is none.
    `default_tokens`: files written before they recorded the token count count as current."""
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text())
        reader = open_store(Path(run_dir))
    except (OSError, ValueError, ZipfstageError) as exc:
        return None, f"{path.name} cannot be read: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get(key), dict | list):
        return None, f"{path.name} is not {kind}"
    current = (reader.attributes.generation, reader.n_tokens)
    tokens = data.get("n_tokens_store", reader.n_tokens if default_tokens else None)
    if (data.get("store_id"), tokens) != current:
        return None, f"{path.name} was made from another store state: run `{command}` again"
    return data, None

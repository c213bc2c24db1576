"""`open_run(path)`: a run folder in a notebook, through the same readers every stage uses.

    >>> run = zipfstage.open_run("results")
    >>> run.fits.query("verdict == 'plausible'").sort_values("alpha").head()
    >>> x = run.metric("layer_15", "max_abs")           # committed rows, position 0 left out
    >>> run.tokens().query("position == 0")

Only committed batches are ever returned (the store may still be filling); damaged or missing
chunks raise the same one-line `ZipfstageError` that `fit` and `report` give.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zipfstage.analysis.fit_table import fit_rows
from zipfstage.errors import ZipfstageError
from zipfstage.outliers.analysis import read_outliers
from zipfstage.store import RunAttributes, StoreReader, open_store
from zipfstage.store.tokenizer import load_decoder

if TYPE_CHECKING:
    import pandas as pd


def open_run(path: str | Path) -> Run:
    """A collected (and possibly fitted) run folder, the one `--out` named."""
    return Run(Path(path))


class Run:
    """Read-only view of one run folder: `.fits`, `.metric()`, `.outliers`, `.tokens()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: StoreReader = open_store(path)

    def __repr__(self) -> str:
        name, tokens = self.attributes.model_name, self.store.n_tokens
        return (
            f"Run({str(self.path)!r}: {name}, {tokens:,} tokens, "
            f"{len(self.points)} points, {len(self.metrics)} metrics)"
        )

    @property
    def attributes(self) -> RunAttributes:
        return self.store.attributes

    @property
    def points(self) -> list[str]:
        return self.store.points

    @property
    def metrics(self) -> list[str]:
        return self.store.metrics

    @cached_property
    def fits(self) -> pd.DataFrame:
        """One row per point x metric (x channel for channel_wise): alpha, its CI, xmin,
        n_tail, KS, p, Clauset's and the likelihood-ratio verdicts, every alternative's R and p."""
        return _pandas().DataFrame(fit_rows(self.path))

    def metric(self, point: str, name: str, skip_positions: int = 1) -> np.ndarray:
        """Committed values: [N] for a scalar metric, [N, k] for channel_wise; tokens at
        sequence positions below `skip_positions` left out (position 0 is the attention sink)."""
        return self.store.metric(point, name, skip_positions=skip_positions)

    @cached_property
    def outliers(self) -> dict[str, Any] | None:
        """outliers.json (massive activations, outlier features, ...), None before `fit`."""
        data, problem = read_outliers(self.path)
        if problem is not None:
            raise ZipfstageError(problem)
        return data

    def tokens(self, decode: bool = True) -> pd.DataFrame:
        """Every committed row: token id, position in its sequence and (with the tokenizer
        collect saved) its text. Rows line up with `metric(..., skip_positions=0)`."""
        frame = _pandas().DataFrame(
            {"id": self.store.token_ids(), "position": self.store.positions()}
        )
        decoder = load_decoder(self.path) if decode else None
        if decoder is not None:
            texts = {int(i): decoder(int(i)) for i in np.unique(frame["id"].to_numpy())}
            frame["text"] = frame["id"].map(texts)
        return frame


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ZipfstageError(
            "tables need pandas: pip install 'zipfstage[analysis]' (or read fits.json directly)"
        ) from None
    return pandas

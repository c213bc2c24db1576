"""Where the tail comes from: the tokens with the most extreme values of one metric, per point."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from zipfstage.store.reader import StoreReader
from zipfstage.store.tokenizer import Decoder


@dataclass(frozen=True)
class TailToken:
    rank: int
    token_id: int
    text: str | None
    position: int
    value: float


@dataclass(frozen=True)
class PointTail:
    point: str
    tokens: list[TailToken]
    summary: str


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the k largest finite values, largest first (argpartition, then sort k)."""
    clean = np.where(np.isfinite(values), values, -np.inf)
    k = min(k, int(np.isfinite(values).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(clean, len(clean) - k)[len(clean) - k :]
    return part[np.argsort(clean[part], kind="stable")[::-1]]


def tail_tokens(
    reader: StoreReader, metric: str, k: int, decoder: Decoder | None
) -> list[PointTail]:
    """For every point, the k tokens with the largest `metric`, and what they have in common."""
    if k <= 0:
        return []
    ids = reader.token_ids()
    positions = reader.positions()
    first_share = float(np.mean(positions == 0)) if len(positions) else 0.0
    tails = []
    for point in reader.points:
        values = reader.metric(point, metric)
        rows = top_indices(values, k)
        tokens = [
            TailToken(
                rank=rank,
                token_id=int(ids[row]),
                text=decoder(int(ids[row])) if decoder else None,
                position=int(positions[row]),
                value=float(values[row]),
            )
            for rank, row in enumerate(rows, start=1)
        ]
        tails.append(PointTail(point, tokens, _summary(tokens, first_share)))
    return tails


def show_token(token: TailToken) -> str:
    """Readable token text: whitespace made visible, or the id when there is no tokenizer."""
    if token.text is None:
        return f"id {token.token_id}"
    text = token.text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    text = text.replace("\r", "\\r")
    if text.strip(" ") != text:
        text = text.replace(" ", "\u2423")
    return text if text else "(empty)"


def _summary(tokens: list[TailToken], first_share: float) -> str:
    if not tokens:
        return "no finite values"
    at_start = sum(t.position == 0 for t in tokens)
    counts = Counter(show_token(t) for t in tokens).most_common(3)
    common = ", ".join(f"\u201c{text}\u201d \u00d7{n}" for text, n in counts if n > 1)
    parts = [
        f"{at_start} of {len(tokens)} at position 0 "
        f"(position 0 is {100 * first_share:.2g}% of all tokens)",
        f"median position {int(np.median([t.position for t in tokens]))}",
    ]
    if common:
        parts.append(f"repeated: {common}")
    return "; ".join(parts)

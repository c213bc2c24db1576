"""Where the tail comes from: the tokens with the most extreme values of one metric, per point."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

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
class TokenGroup:
    """One token's share of a tail: how often it is there, its largest value, where it sits."""

    token_id: int
    text: str | None
    count: int
    max_value: float
    positions: tuple[int, ...]
    share: float


@dataclass(frozen=True)
class PointTail:
    """The top-k tokens of one point, and the same tail grouped by token: over every position,
    and without position 0, so a tail made of the first token still shows what comes next."""

    point: str
    tokens: list[TailToken]
    summary: str
    groups: list[TokenGroup]
    groups_after_first: list[TokenGroup]


class _Shown(Protocol):
    @property
    def token_id(self) -> int: ...
    @property
    def text(self) -> str | None: ...


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
        tokens = _top_tokens(values, ids, positions, k, decoder)
        later = _top_tokens(np.where(positions == 0, np.nan, values), ids, positions, k, decoder)
        tails.append(
            PointTail(
                point,
                tokens,
                _summary(tokens, first_share),
                group_tokens(tokens),
                group_tokens(later),
            )
        )
    return tails


def _top_tokens(
    values: np.ndarray, ids: np.ndarray, positions: np.ndarray, k: int, decoder: Decoder | None
) -> list[TailToken]:
    return [
        TailToken(
            rank=rank,
            token_id=int(ids[row]),
            text=decoder(int(ids[row])) if decoder else None,
            position=int(positions[row]),
            value=float(values[row]),
        )
        for rank, row in enumerate(top_indices(values, k), start=1)
    ]


def group_tokens(tokens: list[TailToken]) -> list[TokenGroup]:
    """The tail by token id: most frequent first, then the largest value first."""
    by_id: dict[int, list[TailToken]] = {}
    for token in tokens:
        by_id.setdefault(token.token_id, []).append(token)
    groups = [
        TokenGroup(
            token_id=token_id,
            text=members[0].text,
            count=len(members),
            max_value=max(t.value for t in members),
            positions=tuple(sorted({t.position for t in members})),
            share=len(members) / len(tokens),
        )
        for token_id, members in by_id.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, -g.max_value, g.token_id))


def show_token(token: _Shown) -> str:
    """Readable token text: whitespace made visible, or the id when there is no tokenizer."""
    if token.text is None:
        return f"id {token.token_id}"
    text = token.text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    text = text.replace("\r", "\\r")
    if text.strip(" ") != text:
        text = text.replace(" ", "\u2423")
    return text if text else "(empty)"


def show_positions(positions: tuple[int, ...], limit: int = 6) -> str:
    """'0, 3, 17' or '0, 3, 17, 20, 31, 40 and 5 more'."""
    shown = ", ".join(str(p) for p in positions[:limit])
    return shown + (f" and {len(positions) - limit} more" if len(positions) > limit else "")


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

"""Per-head attention statistics of every query token, recomputed from a layer's queries and keys.

SDPA and FlashAttention never materialise the attention weights, so the `attn` site recomputes
them from what the layer hands its attention function: the post-RoPE queries and keys, the mask
it really uses (or the causal / sliding-window rule the kernel applies when the mask is None), its
scaling and softcapping, and grouped key heads (GQA). Rows are softmaxed in float32 a block of
queries at a time, so the [heads, T, T] matrix of a whole batch is never held; from each block
only five numbers per (token, head) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zipfstage.errors import ZipfstageError
from zipfstage.records import ATTN_METRICS

#: what each one is, for readers and the report
ATTN_DESCRIPTIONS = {
    "sink": "attention probability on position 0",
    "first_token": "attention probability on the sequence's first non-BOS token",
    "prev_token": "attention probability on the previous token (NaN at position 0)",
    "attn_max": "largest attention probability of the row",
    "attn_entropy": "entropy of the attention row (nats)",
}
#: logits held at once (floats): 2**23 is 32 MB per block
BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class AttentionCall:
    """What one attention call computes with, beside the queries and keys."""

    scaling: float
    mask: torch.Tensor | None
    #: without a mask: causal (the kernel's `is_causal`) and the sliding window, if any
    causal: bool = True
    sliding_window: int | None = None
    softcap: float | None = None


def attention_stats(
    query: torch.Tensor,
    key: torch.Tensor,
    call: AttentionCall,
    first_index: torch.Tensor,
    block_elements: int = BLOCK_ELEMENTS,
) -> torch.Tensor:
    """[5, batch * T, heads] float32 (`ATTN_METRICS` order) from query [B, H, T, D], key [B, Hkv,
    T, D] and `first_index` [B], the position of each sequence's first non-BOS token."""
    batch, heads, length, _ = query.shape
    if key.shape[-2] != length:
        raise ZipfstageError(
            f"attention over {key.shape[-2]} keys for {length} queries (a cache?); "
            "the attn site needs the whole sequence in one call"
        )
    if key.shape[1] != heads:  # GQA: each key head serves heads // kv_heads query heads
        key = key.repeat_interleave(heads // key.shape[1], dim=1)
    keys_t = key.float().transpose(-1, -2)
    out = torch.empty(len(ATTN_METRICS), batch, length, heads, device=query.device)
    step = max(1, block_elements // max(batch * heads * length, 1))
    first = first_index.view(batch, 1, 1, 1).expand(batch, heads, -1, 1)
    for start in range(0, length, step):
        stop = min(length, start + step)
        probs = _probabilities(query[:, :, start:stop].float(), keys_t, call, start)
        out[:, :, start:stop] = _row_stats(probs, first, start).transpose(-1, -2)
    return out.reshape(len(ATTN_METRICS), batch * length, heads)


def _probabilities(
    query: torch.Tensor, keys_t: torch.Tensor, call: AttentionCall, start: int
) -> torch.Tensor:
    """Softmax rows [B, H, c, T] for the queries at positions start .. start + c - 1."""
    logits = torch.matmul(query, keys_t) * call.scaling
    if call.softcap:
        logits = torch.tanh(logits / call.softcap) * call.softcap
    rows, length = query.shape[-2], keys_t.shape[-1]
    mask = call.mask
    if mask is None:
        if call.causal and length > 1:
            allowed = _causal(start, rows, length, call, logits.device)
            logits = logits.masked_fill(~allowed, -torch.inf)
    elif mask.dim() == 2:  # a padding mask [B, T] (FlashAttention): causal on top of it
        keep = mask.bool()[:, None, None, :] & _causal(start, rows, length, call, logits.device)
        logits = logits.masked_fill(~keep, -torch.inf)
    else:
        block = mask[:, :, start : start + rows, :length]
        if block.dtype == torch.bool:
            logits = logits.masked_fill(~block, -torch.inf)
        else:
            logits = logits + block.float()
    return torch.softmax(logits, dim=-1)


def _causal(
    start: int, rows: int, length: int, call: AttentionCall, device: torch.device
) -> torch.Tensor:
    """[c, T] True where query start + i may see key j (and within the sliding window)."""
    queries = torch.arange(start, start + rows, device=device)[:, None]
    keys = torch.arange(length, device=device)[None, :]
    allowed = keys <= queries
    if call.sliding_window:
        allowed &= keys > queries - call.sliding_window
    return allowed


def _row_stats(probs: torch.Tensor, first: torch.Tensor, start: int) -> torch.Tensor:
    """[5, B, H, c] from probabilities [B, H, c, T]."""
    batch, heads, rows, _ = probs.shape
    positions = torch.arange(start, start + rows, device=probs.device)
    previous = (positions - 1).clamp_min(0).view(1, 1, rows, 1).expand(batch, heads, rows, 1)
    prev = probs.gather(-1, previous).squeeze(-1)
    prev = prev.masked_fill(positions == 0, torch.nan)
    return torch.stack(
        [
            probs[..., 0],
            probs.gather(-1, first.expand(batch, heads, rows, 1)).squeeze(-1),
            prev,
            probs.amax(-1),
            torch.special.entr(probs).sum(-1),
        ]
    )


def first_content_index(input_ids: torch.Tensor, bos_token_id: int | None) -> torch.Tensor:
    """[B] position of each row's first token that is not BOS (0 when there is no BOS id, or
    when a row is all BOS)."""
    if bos_token_id is None:
        return torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    content = input_ids != bos_token_id
    return torch.where(content.any(-1), content.int().argmax(-1), 0).long()

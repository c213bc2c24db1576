"""Token packing: documents joined with EOS, cut into rows with no padding, BOS first."""

from __future__ import annotations

import numpy as np

from zipfstage.collect.corpus import iter_batches, pack_sequences


class CountingTokenizer:
    """Document i of length n tokenizes to n ids starting at 100 * (i + 1)."""

    bos_token_id = 1
    eos_token_id = 2

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list]:
        return {"input_ids": [[100 * (len(t) % 7 + 1) + k for k in range(len(t))] for t in texts]}


def test_rows_are_the_eos_joined_stream_cut_in_order() -> None:
    docs = ["a" * 5, "b" * 13, "c" * 2, "d" * 40]
    tokenizer = CountingTokenizer()
    stream: list[int] = []
    for ids in tokenizer(docs)["input_ids"]:
        stream += [*ids, 2]
    rows = list(pack_sequences(docs, tokenizer, seq_len=8, prepend_bos=True))
    assert all(row[0] == 1 and len(row) == 8 for row in rows)
    body = np.concatenate([row[1:] for row in rows])
    assert body.tolist() == stream[: len(body)]
    assert len(stream) - len(body) < 7  # only a partial last row is dropped
    plain = list(pack_sequences(docs, tokenizer, seq_len=8, prepend_bos=False))
    assert np.concatenate(plain).tolist() == stream[: 8 * len(plain)]


def test_a_long_document_packs_completely() -> None:
    rows = list(pack_sequences(["x" * 100_003], CountingTokenizer(), 256, prepend_bos=False))
    assert len(rows) == 100_004 // 256
    batches = list(iter_batches(iter(rows), batch_size=16, max_sequences=50))
    assert [len(b) for b in batches] == [16, 16, 16, 2]

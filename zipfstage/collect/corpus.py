"""Text sources and token packing: documents in, fixed [batch, seq_len] token batches out.

The order is deterministic (sorted files, the dataset's own order, sorted pydoc topics), so batch b
always holds the same tokens: that is what makes resume and multi-worker collection one problem.
"""

from __future__ import annotations

import glob
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from zipfstage.errors import ZipfstageError

PYDOC = "pydoc"
STDLIB_DOCSTRINGS = "stdlib-docstrings"
_DATASETS_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
_TEXT_SUFFIXES = {".txt", ".md", ".text"}
_TOKENIZE_GROUP = 64


@dataclass(frozen=True)
class DataSpec:
    source: str
    subset: str | None = None
    split: str = "train"
    text_field: str = "text"

    def describe(self) -> dict[str, Any]:
        if self.source in (PYDOC, STDLIB_DOCSTRINGS):  # both change between Python releases
            return {"source": self.source, "python": platform.python_version()}
        return {
            "source": self.source,
            "subset": self.subset,
            "split": self.split,
            "text_field": self.text_field,
        }


def local_files(source: str) -> list[Path] | None:
    """The files a local path or glob names, sorted; None when `source` is not local."""
    if any(ch in source for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not matches:
            raise ZipfstageError(f"no files match {source}")
        return matches
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.suffix in _TEXT_SUFFIXES | set(_DATASETS_BUILDERS)
        )
        if not files:
            raise ZipfstageError(f"no .txt, .jsonl or .parquet files in {path}")
        return files
    if source.startswith((".", "/", "~")) or Path(source).suffix in _TEXT_SUFFIXES | set(
        _DATASETS_BUILDERS
    ):
        raise ZipfstageError(f"data file not found: {source}")
    return None


def check_data_spec(spec: DataSpec) -> None:
    """Fail early on local sources that cannot work (before a model is loaded)."""
    if spec.source == PYDOC:
        return
    files = local_files(spec.source)
    if files is None:
        return
    suffixes = {p.suffix for p in files}
    unknown = suffixes - _TEXT_SUFFIXES - set(_DATASETS_BUILDERS)
    if unknown:
        raise ZipfstageError(
            f"unsupported data file type {', '.join(sorted(unknown))}; use .txt, .jsonl or .parquet"
        )
    if len(suffixes) > 1:
        raise ZipfstageError(f"mixed file types in {spec.source}; give one kind at a time")
    for path in files:
        if path.suffix in _TEXT_SUFFIXES:
            read_text_file(path)


def read_text_file(path: Path) -> str:
    """A text file's content, strictly UTF-8: a wrong guess would tokenize mojibake (or random
    bytes) into the store without a word, so anything else is refused in one line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZipfstageError(
            f"{path} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); convert it, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8.txt"
        ) from None
    if "\x00" in text:
        raise ZipfstageError(f"{path} holds NUL bytes: it looks binary, not text")
    return text


def iter_documents(spec: DataSpec) -> Iterator[str]:
    """Yield document texts in a fixed order."""
    if spec.source == PYDOC:
        from pydoc_data import topics

        for key in sorted(topics.topics):
            yield topics.topics[key]
        return
    if spec.source == STDLIB_DOCSTRINGS:
        yield from iter_stdlib_docstrings()
        return
    files = local_files(spec.source)
    if files is None:
        yield from _iter_hub_dataset(spec)
        return
    suffix = files[0].suffix
    if suffix in _TEXT_SUFFIXES:
        for path in files:
            yield read_text_file(path)
        return
    yield from _iter_records(
        _DATASETS_BUILDERS[suffix],
        {"data_files": [str(p) for p in files]},
        spec.text_field,
        "train",
    )


def iter_stdlib_docstrings() -> Iterator[str]:
    """The docstrings of the standard library's modules, one document per module, offline.

    Read with `ast` (nothing is imported), files in sorted order, tests and site-packages left out.
    """
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test"}
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        docs = [d for n in ast.walk(tree) if isinstance(n, nodes) and (d := ast.get_docstring(n))]
        if docs:
            yield "\n\n".join(docs)


def _iter_hub_dataset(spec: DataSpec) -> Iterator[str]:
    yield from _iter_records(spec.source, {"name": spec.subset}, spec.text_field, spec.split)


def _iter_records(path: str, kwargs: dict[str, Any], field: str, split: str) -> Iterator[str]:
    import datasets

    try:
        dataset = datasets.load_dataset(path, split=split, streaming=True, **kwargs)
        for record in dataset:
            if field not in record:
                raise ZipfstageError(
                    f"records have no field {field!r} (they have: {', '.join(record)}); "
                    "set --text-field"
                )
            text = record[field]
            if isinstance(text, str) and text:
                yield text
    except ZipfstageError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZipfstageError(f"cannot read data {path!r}: {message}") from None


def pack_sequences(
    documents: Iterable[str],
    tokenizer: Any,
    seq_len: int,
    prepend_bos: bool,
) -> Iterator[np.ndarray]:
    """Concatenate documents (EOS between them) and cut into seq_len rows with no padding.

    With `prepend_bos` (and a tokenizer that has BOS) each row starts with BOS followed by
    seq_len - 1 text tokens; a trailing partial row is dropped.
    """
    bos = tokenizer.bos_token_id if prepend_bos else None
    eos = tokenizer.eos_token_id
    body = seq_len - 1 if bos is not None else seq_len
    buffer: list[int] = []
    docs = iter(documents)
    while group := list(islice(docs, _TOKENIZE_GROUP)):
        encoded = tokenizer(group, add_special_tokens=False)["input_ids"]
        for ids in encoded:
            buffer.extend(ids)
            if eos is not None:
                buffer.append(eos)
        start = 0  # cut rows by offset and trim once: slicing per row is quadratic in doc length
        while len(buffer) - start >= body:
            row = buffer[start : start + body]
            start += body
            yield np.asarray(([bos] if bos is not None else []) + row, dtype=np.int64)
        del buffer[:start]


def iter_batches(
    sequences: Iterable[np.ndarray], batch_size: int, max_sequences: int
) -> Iterator[np.ndarray]:
    """Group sequences into [batch_size, seq_len] arrays; the last may hold fewer rows."""
    capped = islice(sequences, max_sequences)
    while rows := list(islice(capped, batch_size)):
        yield np.stack(rows)

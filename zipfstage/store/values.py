"""How channel_wise and topk_abs are stored: in 16 bits when the model computes in 16 bits.

Those two arrays hold the model's own activations (a sampled channel, the k largest |h_c|), so
in a bfloat16 or float16 run every value is exactly a number of that type and float32 wastes
half its bits. The 16-bit form is chosen when the store is created, from the model's dtype:

- float16: the array is float16. Every float16 value is a float16 number, so nothing is lost
  and plain zarr reads the numbers themselves.
- bfloat16: the array is uint16 holding each value's bfloat16 bit pattern (the upper half of
  its float32 bits), with the array attribute `encoding: "bfloat16"`. zarr-python 3.1 has no
  bfloat16, and float16 is no substitute: it holds a bf16 value exactly only between about
  7.6e-6 (2**-17, in its subnormals) and 65,504, and a tiny model's channel_wise already holds
  thousands of smaller values (activations near zero), while massive activations can pass
  65,504. So the only lossless 16 bits are bf16's own; plain zarr reads them as integers, and
  `(x.astype("uint32") << 16).view("float32")` (the attribute `decode` says so) gives the
  values. `StoreReader` and the outlier reader decode them.

Other stores (float32 models, and every store written before this) keep float32; every reader
and writer follows the array's own dtype and attribute, so older stores resume and read as
before. Each write checks that the values are exact in the stored form: a value that is not
(a model that keeps a site in float32) is refused, never rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: the array attribute naming a non-native encoding, and its one value
ENCODING_ATTR = "encoding"
BFLOAT16 = "bfloat16"
#: how a plain zarr reader turns a bfloat16-encoded array into float32 (also in the attribute)
BFLOAT16_RECIPE = '(x.astype("uint32") << 16).view("float32")'
#: bfloat16's quiet NaN: the fill value, so a row with no chunk reads NaN as in float32 arrays
BFLOAT16_NAN = 0x7FC0


def half_dtype(compute_dtype: str) -> str:
    """The stored dtype of channel_wise and topk_abs for a model computing in `compute_dtype`."""
    return {"bfloat16": "uint16", "float16": "float16"}.get(compute_dtype, "float32")


def value_fill(dtype: str) -> float:
    """The fill value that reads as NaN: NaN, or bfloat16's NaN bits in a uint16 array."""
    return float(BFLOAT16_NAN) if dtype == "uint16" else float("nan")


def value_attributes(dtype: str) -> dict[str, Any]:
    """The array attributes that tell a reader how to decode it (none for plain floats)."""
    if dtype == "uint16":
        return {ENCODING_ATTR: BFLOAT16, "decode": BFLOAT16_RECIPE}
    return {}


def encode(values: np.ndarray, dtype: np.dtype, encoding: str | None) -> np.ndarray:
    """float32 values in the array's stored form, refusing any that it cannot hold exactly."""
    values = np.asarray(values)
    if encoding == BFLOAT16:
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        if np.any(bits & 0xFFFF):
            raise InexactValues(BFLOAT16)
        return (bits >> 16).astype(np.uint16)
    if dtype == np.float16:
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(values.dtype), values, equal_nan=True):
            raise InexactValues("float16")
        return half
    return values


def decode(stored: np.ndarray, encoding: str | None) -> np.ndarray:
    """Stored values as float32 (float64 stays float64; integer arrays stay as they are)."""
    if encoding == BFLOAT16:
        return (np.asarray(stored).astype(np.uint32) << 16).view(np.float32)
    if stored.dtype == np.float16:
        return stored.astype(np.float32)
    return stored


def encoding_of(attributes: Mapping[str, Any]) -> str | None:
    value = attributes.get(ENCODING_ATTR)
    return value if value == BFLOAT16 else None


class InexactValues(ValueError):
    """Values that the array's 16-bit form cannot hold exactly (they were not computed in it)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"values that are not {kind} numbers")
        self.kind = kind

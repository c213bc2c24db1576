"""zipfstage: do LLM activations follow power laws? Collect, fit, plot and report by stage."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zipfstage.analysis.run import Run, open_run

__all__ = ["Run", "open_run"]


def __getattr__(name: str) -> Any:
    """`zipfstage.open_run` without loading zarr on `import zipfstage` (the CLI stays quick)."""
    if name in __all__:
        from zipfstage.analysis import run

        return getattr(run, name)
    raise AttributeError(f"module 'zipfstage' has no attribute {name!r}")

"""`zipfstage compare`: several runs side by side by relative depth (never loads a model)."""

from zipfstage.compare.stage import (
    CompareResult,
    PreparedCompare,
    prepare_compare,
    run_compare,
    write_compare,
)

__all__ = ["CompareResult", "PreparedCompare", "prepare_compare", "run_compare", "write_compare"]

"""The architecture's size rule: no function in zipfstage/ over 60 lines, numba kernels aside."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zipfstage"
MAX_LINES = 60


def _is_numba_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("njit" in ast.unparse(d) or "numba" in ast.unparse(d) for d in node.decorator_list)


def test_no_function_is_longer_than_sixty_lines() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES and not _is_numba_kernel(node):
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({length} lines)")
    assert not too_long, "split these functions: " + ", ".join(too_long)

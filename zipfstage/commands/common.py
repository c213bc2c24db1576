"""What every command shares: option types, the settings load, and the one error exit path."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from zipfstage.config import Settings, unknown_environment_keys
from zipfstage.errors import INTERRUPTED_EXIT_CODE, ZipfstageError

console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (see configs/default.yaml).", dir_okay=False
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Run directory holding store.zarr (default: results)."),
]
PointsOption = Annotated[
    str | None,
    typer.Option("--points", help="Comma-separated collection points, or 'all'."),
]
MetricsOption = Annotated[
    str | None,
    typer.Option("--metrics", help="Comma-separated metrics, or 'all'."),
]


def abort(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise (so callers read `raise abort(...)`)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one line and exit 2, and Ctrl-C into exit 130, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ZipfstageError as exc:
            raise abort(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise abort("interrupted", INTERRUPTED_EXIT_CODE) from None

    return wrapper


def split_csv(value: str | None) -> list[str] | None:
    """'a, b,c' -> ['a', 'b', 'c']; None stays None so the config value stands."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ZipfstageError(f"expected a comma-separated list, got {value!r}")
    return items


def load_settings(config: Path | None, out: Path | None = None, **sections: Any) -> Settings:
    """Resolve settings with CLI values (None = not given) on top of env, YAML and defaults."""
    for name in unknown_environment_keys(os.environ):
        console.print(
            f"[yellow]warning:[/] environment variable {name} sets no setting (sections and keys "
            "join with two underscores: ZIPFSTAGE_COLLECT__MAX_TOKENS)",
            highlight=False,
            soft_wrap=True,
        )
    return Settings.load(config, out=out, **sections)

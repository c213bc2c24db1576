"""The `zipfstage` command: builds the Typer app and registers one function per stage."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from zipfstage.commands import (
    ablate,
    check,
    collect,
    compact,
    compare,
    config_cmd,
    demo,
    export,
    fit,
    plot,
    report,
)
from zipfstage.commands.common import abort
from zipfstage.errors import USAGE_EXIT_CODE


class OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one line and exit 2, no box."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            result = abort("aborted", 1).exit_code
        except typer.TyperException as exc:
            message = " ".join(exc.format_message().split())
            result = abort(message, USAGE_EXIT_CODE).exit_code if message else USAGE_EXIT_CODE
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="zipfstage",
    help=(
        "Measure whether LLM activations follow power laws, layer by layer and metric by "
        "metric.\n\nStages share one Zarr store: collect (GPU) -> fit -> plot -> report (laptop)."
    ),
    cls=OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("collect")(collect.collect_command)
app.command("fit")(fit.fit_command)
app.command("plot")(plot.plot_command)
app.command("report")(report.report_command)
app.command("compact")(compact.compact_command)
app.command("check")(check.check_command)
app.command("config")(config_cmd.config_command)
app.command("demo")(demo.demo_command)
app.command("compare")(compare.compare_command)
app.command("export")(export.export_command)
app.command("ablate")(ablate.ablate_command)


def main() -> None:
    app()

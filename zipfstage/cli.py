"""The `zipfstage` command: builds the Typer app and registers one function per stage."""

from __future__ import annotations

import typer

from zipfstage.commands import collect, compare, config_cmd, demo, fit, plot, report

app = typer.Typer(
    name="zipfstage",
    help=(
        "Measure whether LLM activations follow power laws, layer by layer and metric by "
        "metric.\n\nStages share one Zarr store: collect (GPU) -> fit -> plot -> report (laptop)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("collect")(collect.collect_command)
app.command("fit")(fit.fit_command)
app.command("plot")(plot.plot_command)
app.command("report")(report.report_command)
app.command("config")(config_cmd.config_command)
app.command("demo")(demo.demo_command)
app.command("compare")(compare.compare_command)


def main() -> None:
    app()

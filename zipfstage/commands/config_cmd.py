"""`zipfstage config`: print the fully resolved settings as YAML."""

from __future__ import annotations

import typer

from zipfstage.commands.common import ConfigOption, OutOption, cli_errors, load_settings


@cli_errors
def config_command(config: ConfigOption = None, out: OutOption = None) -> None:
    """Print the resolved config: defaults < YAML file < ZIPFSTAGE_* environment < options."""
    typer.echo(load_settings(config, out=out).to_yaml(), nl=False)

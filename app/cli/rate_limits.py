"""`flask --app wsgi rate-limits show|set|clear`: change rate limits at run time, no restart."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.auth.actors import cli_actor
from app.auth.rate_limits import LIMIT_NAMES, configured_limit
from app.services import rate_limit_overrides


@click.group("rate-limits")
def rate_limits_group():
    """Show or override RATELIMIT_API / RATELIMIT_AUTH in every running process (within 5 s)."""


@rate_limits_group.command("show")
@with_appcontext
def show_command():
    """The limits in force (a run-time override, else the configuration)."""
    for name in LIMIT_NAMES:
        click.echo(f"{name}={configured_limit(name)} (configured: {current_app.config[name]})")


@rate_limits_group.command("set")
@click.argument("name", type=click.Choice(LIMIT_NAMES))
@click.argument("value")
@with_appcontext
def set_command(name: str, value: str):
    """Override NAME with VALUE, like "100 per minute"."""
    try:
        rate_limit_overrides.override(name, value, cli_actor())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from None
    click.echo(f"{name} is now {value} in every process (within 5 s)")


@rate_limits_group.command("clear")
@click.argument("name", type=click.Choice(LIMIT_NAMES))
@with_appcontext
def clear_command(name: str):
    """Drop the override: the configured value applies again."""
    rate_limit_overrides.override(name, None, cli_actor())
    click.echo(f"{name} is back to its configured {current_app.config[name]}")

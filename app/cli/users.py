"""flask users create USERNAME --role ROLE [--password P] [--merchant ID]"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.auth.actors import cli_actor
from app.auth.permissions import ROLES
from app.domain.errors import Conflict, ValidationFailed
from app.services import accounts

users_group = AppGroup("users", help="Manage dashboard and API users.")


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
@click.option("--merchant", "merchant_id", help="The merchant a merchant user belongs to.")
def create_user(username: str, role: str, password: str | None, merchant_id: str | None):
    """Create a user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(username, password, role, merchant_id, cli_actor())
    except ValidationFailed as exc:
        for error in exc.errors:
            click.echo(f"error: {error.field}: {error.message}", err=True)
        raise SystemExit(2) from None
    except Conflict as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"created {user.role} {user.username} ({user.id})")

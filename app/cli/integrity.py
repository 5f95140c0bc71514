"""flask check-integrity: reconcile stock, orders, payments and refunds."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.services.integrity import check_integrity


@click.command("check-integrity")
@with_appcontext
def check_integrity_command():
    """List every disagreement between stock, orders, saga steps, payments and refunds."""
    problems = check_integrity()
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} disagreement(s) found", err=True)
        raise SystemExit(1)
    click.echo("integrity OK: stock, orders, order lines, saga steps, payments and refunds agree")

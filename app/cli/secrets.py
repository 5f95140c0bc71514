"""flask secrets rotate-jwt-key: rotate the JWT signing key in Vault (old tokens stay valid)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.auth.actors import cli_actor
from app.extensions import db
from app.infra.secrets import rotate_jwt_signing_key
from app.services import audit
from config import ConfigError

secrets_group = AppGroup("secrets", help="Rotate secrets kept in Vault.")


@secrets_group.command("rotate-jwt-key")
@click.option("--force", is_flag=True, help="Rotate again within JWT_TTL_SECONDS of the last.")
def rotate_jwt_key(force: bool):
    """Write a new JWT signing key to Vault; the current key stays valid until its tokens expire."""
    config = current_app.config
    if not config["VAULT_ADDR"]:
        click.echo("error: ORDERPROCESSING_VAULT_ADDR is not set; keys rotate in Vault", err=True)
        raise SystemExit(1)
    try:
        new_kid, old_kid = rotate_jwt_signing_key(dict(config), force=force)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    # Key ids only: a key id is a hash prefix, never the key.
    audit.record(cli_actor(), "secret.rotate", "jwt_signing_key", new_kid,
                 before={"kid": old_kid}, after={"kid": new_kid})
    db.session.commit()
    click.echo(
        f"JWT signing key rotated: kid {old_kid} -> {new_kid}. Every process signs with the new "
        f"key within VAULT_REFRESH_SECONDS ({config['VAULT_REFRESH_SECONDS']}s); tokens signed "
        f"with {old_kid} stay valid until they expire ({config['JWT_TTL_SECONDS']}s at most)."
    )

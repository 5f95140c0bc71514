"""flask backup [PATH] / flask restore PATH [--force]: verified backups of all data."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from app.auth.actors import cli_actor
from app.services import backups


def _echo(line: str) -> None:
    click.echo(line, err=True)  # progress on stderr, so stdout carries only the result


@click.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@with_appcontext
def backup_command(path: Path | None):
    """Take a consistent backup of all data into PATH (default: BACKUP_DIR/backup-<time>)."""
    target = path or backups.default_backup_path()
    try:
        manifest = backups.take_backup(target, progress=_echo)
    except backups.BackupError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    rows = sum(t["rows"] for t in manifest["tables"].values())
    click.echo(f"backup {target} schema={manifest['schema_revision']} rows={rows}")


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@with_appcontext
def restore_command(path: Path, force: bool):
    """Restore the backup at PATH, then verify counts, checksums and check-integrity."""
    try:
        report = backups.restore_backup(path, force=force, progress=_echo, actor=cli_actor())
    except backups.BackupError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    for mismatch in report.mismatches:
        click.echo(f"MISMATCH {mismatch}", err=True)
    verdict = "verified" if report.ok else "FAILED verification"
    click.echo(
        f"restore {verdict}: {report.tables} tables, {report.rows} rows, schema "
        f"{report.schema_revision}, check-integrity {report.integrity}, {report.seconds:.1f}s"
    )
    if not report.ok:
        raise SystemExit(2)

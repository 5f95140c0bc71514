"""`flask --app wsgi ...` commands of the operations contract."""

from flask import Flask


def register_commands(app: Flask) -> None:
    from app.cli.backup import backup_command, restore_command
    from app.cli.integrity import check_integrity_command
    from app.cli.observability import (
        observability_group,
        profile_request_command,
        profile_saga_command,
    )
    from app.cli.rate_limits import rate_limits_group
    from app.cli.secrets import secrets_group
    from app.cli.seed import seed_demo_command
    from app.cli.smoke import smoke_test_command
    from app.cli.users import users_group

    app.cli.add_command(users_group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(check_integrity_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(observability_group)
    app.cli.add_command(profile_request_command)
    app.cli.add_command(profile_saga_command)
    app.cli.add_command(secrets_group)
    app.cli.add_command(smoke_test_command)
    app.cli.add_command(rate_limits_group)

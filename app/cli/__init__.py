"""`flask --app wsgi ...` commands of the operations contract."""

import functools

import click
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _dependency_errors_as_messages(command: click.Command) -> None:
    """A database or Redis that cannot be reached is a one-line error and exit 1, not a trace."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _dependency_errors_as_messages(sub)
        return
    callback = command.callback
    if callback is None:
        return

    @functools.wraps(callback)
    def wrapped(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except (OperationalError, PoolTimeoutError) as exc:
            raise click.ClickException(f"the database is unreachable: {_first_line(exc)}") from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise click.ClickException(f"Redis is unreachable: {_first_line(exc)}") from None

    command.callback = wrapped


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
    for command in app.cli.commands.values():
        _dependency_errors_as_messages(command)

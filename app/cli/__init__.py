"""`flask --app wsgi ...` commands of the operations contract."""

from flask import Flask


def register_commands(app: Flask) -> None:
    from app.cli.seed import seed_demo_command
    from app.cli.users import users_group

    app.cli.add_command(users_group)
    app.cli.add_command(seed_demo_command)

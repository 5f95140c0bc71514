"""The gunicorn and `flask --app wsgi` target."""

from app.factory import create_app

app = create_app()

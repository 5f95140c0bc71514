"""The gunicorn and `flask --app wsgi` target."""

from app.factory import create_app
from config import exit_on_config_error

# A bad or (in production) missing setting or secret: its message, exit code 3, no traceback.
app = exit_on_config_error(create_app)

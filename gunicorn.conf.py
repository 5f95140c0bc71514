"""gunicorn settings: bind, workers, timeouts (TLS and Prometheus hooks live here too)."""

import os

_host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - a server binds all interfaces by default
_port = os.environ.get("PORT") or os.environ.get("ORDERPROCESSING_SERVER_PORT") or "8000"
bind = os.environ.get("GUNICORN_BIND", f"{_host}:{_port}")
workers = int(os.environ.get("WEB_CONCURRENCY", os.environ.get("ORDERPROCESSING_WEB_WORKERS", "2")))
threads = int(os.environ.get("ORDERPROCESSING_WEB_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
# Each worker builds its own app and connection pool: nothing is shared across the fork.
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("ORDERPROCESSING_ACCESS_LOG", None)
errorlog = "-"
# Stop slowloris-style header floods at the door.
limit_request_line = 8190
limit_request_fields = 100

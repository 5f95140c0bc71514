"""Settings taking effect where they are used: gunicorn's bind, workers and access log come from
the same load_settings() as the app's (env beats the YAML file beats defaults)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.servers import BIN, ROOT

# Names that would leak the caller's own setup into gunicorn's.
CLEARED = ("PORT", "HOST", "WEB_CONCURRENCY", "GUNICORN_BIND", "PROMETHEUS_MULTIPROC_DIR")


def gunicorn_config(tmp_path, env: dict[str, str], yaml_text: str | None = None):
    """`gunicorn -c gunicorn.conf.py wsgi:app --print-config`, run from an empty directory."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ORDERPROCESSING_") and k not in CLEARED}
    environ.update(PYTHONPATH=str(ROOT), ORDERPROCESSING_INSTANCE_PATH=str(tmp_path / "instance"))
    if yaml_text is not None:
        (tmp_path / "config.yaml").write_text(yaml_text)
    environ.update(env)
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app", "--print-config"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False,
    )
    printed = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            printed[name.strip()] = value.strip()
    return result, printed


@pytest.mark.parametrize(
    ("env", "yaml_text", "bind"),
    [
        ({}, None, "['0.0.0.0:8000']"),
        ({}, "server_host: 127.0.0.1\nserver_port: 9001\n", "['127.0.0.1:9001']"),
        ({"ORDERPROCESSING_SERVER_PORT": "9002"}, "server_port: 9001\n", "['0.0.0.0:9002']"),
        ({"ORDERPROCESSING_SERVER_HOST": "127.0.0.2"}, "server_host: 127.0.0.1\n",
         "['127.0.0.2:8000']"),
        ({"PORT": "9003"}, "server_port: 9001\n", "['0.0.0.0:9003']"),
        ({"PORT": "9003", "ORDERPROCESSING_SERVER_PORT": "9004"}, None, "['0.0.0.0:9004']"),
        ({"HOST": "127.0.0.3", "PORT": "9005"}, None, "['127.0.0.3:9005']"),
        ({"HOST": "127.0.0.3", "ORDERPROCESSING_SERVER_HOST": "127.0.0.4"}, None,
         "['127.0.0.4:8000']"),
        ({"ORDERPROCESSING_SERVER_HOST": "::1"}, None, "['[::1]:8000']"),
        ({"GUNICORN_BIND": "127.0.0.9:9999", "PORT": "9003"}, "server_port: 9001\n",
         "['127.0.0.9:9999']"),
    ],
)
def test_gunicorn_binds_where_the_settings_say(tmp_path, env, yaml_text, bind):
    result, printed = gunicorn_config(tmp_path, env, yaml_text)
    assert result.returncode == 0, result.stderr[-2000:]
    assert printed["bind"] == bind


def test_gunicorn_workers_threads_and_access_log_are_settings(tmp_path):
    result, printed = gunicorn_config(tmp_path, {})
    assert (printed["workers"], printed["threads"], printed["worker_class"]) == ("2", "1", "sync")
    assert printed["accesslog"] == "None"
    result, printed = gunicorn_config(
        tmp_path, {}, "web_workers: 3\nweb_threads: 4\naccess_log: '-'\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (printed["workers"], printed["threads"], printed["worker_class"]) == (
        "3", "4", "gthread"
    )
    assert printed["accesslog"] == "-"
    result, printed = gunicorn_config(tmp_path, {"WEB_CONCURRENCY": "5"})
    assert printed["workers"] == "5"
    result, printed = gunicorn_config(
        tmp_path, {"WEB_CONCURRENCY": "5", "ORDERPROCESSING_WEB_WORKERS": "6"}
    )
    assert printed["workers"] == "6"


@pytest.mark.parametrize(
    ("env", "named"),
    [({"PORT": "abc"}, "PORT must be a whole number"),
     ({"ORDERPROCESSING_WEB_THREADS": "0"}, "ORDERPROCESSING_WEB_THREADS must be at least 1")],
)
def test_gunicorn_refuses_to_start_on_a_malformed_setting(tmp_path, env, named):
    result, _ = gunicorn_config(tmp_path, env)
    assert result.returncode != 0
    assert named in result.stderr


# --- the database password reaches the app's own connections ---


def test_the_database_password_setting_is_in_the_engine_url(make_app, postgresql_database_url):
    from sqlalchemy import make_url, text

    from app.extensions import db

    app = make_app(postgresql_database_url, DATABASE_PASSWORD="db-pass/with@odd:chars")
    with app.app_context():
        assert db.engine.url.password == "db-pass/with@odd:chars"
        assert db.session.execute(text("SELECT 1")).scalar() == 1
        db.session.remove()
    # The configured URL is left as given (pg_dump gets the password as PGPASSWORD).
    assert make_url(app.config["DATABASE_URL"]).password is None


def test_a_password_in_the_database_url_is_kept(make_app, postgresql_database_url):
    from app.extensions import db

    url = postgresql_database_url.replace("postgres@", "postgres:url-password@")
    app = make_app(url, DATABASE_PASSWORD="setting-password")
    with app.app_context():
        assert db.engine.url.password == "url-password"


def test_the_database_password_from_vault_is_in_the_engine_url(make_app, postgresql_database_url,
                                                               vault):
    from app.extensions import db

    vault.client().secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-dbpass", mount_point="secret",
        secret={"database_password": "db-password-from-vault"},
    )
    app = make_app(postgresql_database_url, VAULT_ADDR=vault.addr, VAULT_TOKEN="test-root-token",
                   VAULT_PATH="orderprocessing-dbpass")
    with app.app_context():
        assert db.engine.url.password == "db-password-from-vault"


# --- METRICS_ENABLED ---


def test_metrics_answer_404_when_disabled(make_app, sqlite_database_url):
    enabled = make_app(sqlite_database_url).test_client()
    assert enabled.get("/metrics").status_code == 200
    disabled = make_app(sqlite_database_url, METRICS_ENABLED=False).test_client()
    assert disabled.get("/metrics").status_code == 404
    assert disabled.get("/healthz").status_code == 200


# --- TRUSTED_PROXY_COUNT: whose X-Forwarded-For is believed ---

PEER = {"REMOTE_ADDR": "10.9.8.7"}


def _with_address_echo(app):
    from flask import request

    from app.observability.client_ip import client_ip

    app.add_url_rule("/_test/address", "test_address",
                     lambda: {"ip": client_ip(), "scheme": request.scheme})
    return app.test_client()


def test_forwarded_for_is_believed_behind_one_trusted_proxy(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, TRUSTED_PROXY_COUNT=1, RATELIMIT_AUTH="2 per minute")
    client = _with_address_echo(app)
    seen = client.get("/_test/address", environ_base=PEER, headers={
        "X-Forwarded-For": "198.51.100.1, 203.0.113.5", "X-Forwarded-Proto": "https"}).json
    assert seen == {"ip": "203.0.113.5", "scheme": "https"}  # the address our proxy saw

    def attempt(forwarded_for: str, n: int) -> int:
        return client.post("/api/v1/auth/token", environ_base=PEER,
                           headers={"X-Forwarded-For": forwarded_for},
                           json={"username": f"nobody-{n}", "password": "wrong"}).status_code

    # Rate limited per forwarded client: one client's budget does not touch another's.
    assert [attempt("203.0.113.5", n) for n in range(3)] == [401, 401, 429]
    assert attempt("203.0.113.6", 3) == 401


def test_forwarded_for_is_ignored_without_trusted_proxies(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, RATELIMIT_AUTH="2 per minute")
    client = _with_address_echo(app)
    seen = client.get("/_test/address", environ_base=PEER, headers={
        "X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}).json
    assert seen == {"ip": "10.9.8.7", "scheme": "http"}

    def attempt(forwarded_for: str, n: int) -> int:
        return client.post("/api/v1/auth/token", environ_base=PEER,
                           headers={"X-Forwarded-For": forwarded_for},
                           json={"username": f"nobody-{n}", "password": "wrong"}).status_code

    # A client cannot escape the limit by making up X-Forwarded-For: the peer is counted.
    assert [attempt(f"203.0.113.{n}", n) for n in range(3)] == [401, 401, 429]


# --- `make install` leaves the app installed in .venv ---


def test_flask_finds_the_app_from_any_directory(tmp_path):
    """Scripts outside the repo use `.venv/bin/flask --app wsgi ...` (the install is editable)."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ORDERPROCESSING_") and k not in ("PYTHONPATH", "FLASK_APP")}
    environ["ORDERPROCESSING_INSTANCE_PATH"] = str(tmp_path / "instance")
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "--help"], cwd=tmp_path, env=environ,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    commands = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"db", "users", "seed-demo", "backup", "check-integrity"} <= commands


def test_every_setting_has_a_row_in_the_readme_configuration_table():
    import re

    from config import DEFAULTS

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration"):readme.index("### Secrets in Vault")]
    documented = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        names = re.findall(r"`([A-Z_]+)`", row.split("|")[1])
        full = [n for n in names if not n.startswith("_")]
        documented.update(full)
        # `CIRCUIT_BREAKER_FAILURE_THRESHOLD` / `_WINDOW_SECONDS`: the shorthand shares a prefix.
        for suffix in (n for n in names if n.startswith("_")):
            documented.update(name for name in DEFAULTS if name.endswith(suffix)
                              and any(f.startswith(name[: -len(suffix)]) for f in full))
    assert set(DEFAULTS) - documented == set()


def test_a_metrics_directory_named_but_not_made_yet_does_not_stop_a_command(tmp_path):
    """$PROMETHEUS_MULTIPROC_DIR on a fresh host or an emptied tmpfs: made on first use, not a
    FileNotFoundError from the first metric."""
    missing = tmp_path / "not-made-yet" / "prometheus"
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ORDERPROCESSING_") and k not in CLEARED}
    environ.update(
        PROMETHEUS_MULTIPROC_DIR=str(missing), ORDERPROCESSING_ENV="testing",
        ORDERPROCESSING_INSTANCE_PATH=str(tmp_path / "instance"),
        ORDERPROCESSING_DATABASE_URL=f"sqlite:///{tmp_path / 'orders.db'}",
    )
    result = subprocess.run(
        [str(BIN / "flask"), "--app", str(ROOT / "wsgi"), "db", "upgrade"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert missing.is_dir()
